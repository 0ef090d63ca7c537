"""Errors the core raises for callers to show as they are."""


class InputError(ValueError):
    """Bad input: names the field, what was wrong and what is accepted."""

    def __init__(self, field: str, problem: str, accepted: str | None = None):
        self.field = field
        self.problem = problem
        self.accepted = accepted
        text = f"{field}: {problem}"
        if accepted:
            text += f"; accepted: {accepted}"
        super().__init__(text)


class NotFoundError(LookupError):
    """A stored thing (dataset, model, run) that does not exist."""


class Cancelled(Exception):
    """Work was asked to stop; progress reports raise it so that long loops end at their next step."""


class Refused(Exception):
    """A well-formed request that a rule refuses (a risk limit, the venue): nothing was done."""
