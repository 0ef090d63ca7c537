"""Studies: create or resume one in its storage, run trials, and summarise what they found.

The default storage is one SQLite file under the home; a storage URL (PostgreSQL) lets worker processes
on several machines share a study. A study keeps its own setup (StudyConfig) as a user attribute, so a
worker needs only the study's name and storage: it builds the same feature set, checks that its candles
hash the same, and adds trials. Optuna's dashboard opens the same storage.
"""

import asyncio
import os
import platform
import socket
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import optuna
from optuna.trial import FrozenTrial, TrialState

from mcp_trader import __version__
from mcp_trader.backtest.funding import FundingCoverage, stored_funding
from mcp_trader.errors import InputError, NotFoundError
from mcp_trader.features.dataset import FeatureRequest, FeatureSet, build_feature_set
from mcp_trader.models.base import Report, silent
from mcp_trader.models.device import resolve_device
from mcp_trader.optimize.deflated import Deflated, deflated_sharpe
from mcp_trader.optimize.objective import Market, Objective
from mcp_trader.optimize.overfitting import Overfitting, probability_of_overfitting
from mcp_trader.optimize.records import Best, Counts, StudyConfig, StudyRequest, StudySummary, TrialRow
from mcp_trader.policy.limits import RiskLimits
from mcp_trader.timefmt import now_iso

if TYPE_CHECKING:
    from mcp_trader.home import Home

CONFIG_KEY = "mcp_trader"
DEFAULT_DAYS = 365
optuna.logging.set_verbosity(optuna.logging.WARNING)


def redacted(url: str) -> str:
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # an unreadable URL is shown as its scheme only
        return url.split(":", 1)[0] + "://…"


def open_storage(url: str) -> optuna.storages.RDBStorage:
    """The storage at `url`, reached within seconds or refused as bad input (the password never shown)."""
    sqlite = url.startswith("sqlite")
    engine = {"connect_args": {"timeout": 60}} if sqlite else {"connect_args": {"connect_timeout": 5},
                                                                "pool_pre_ping": True}
    try:
        return optuna.storages.RDBStorage(url, engine_kwargs=engine)
    except Exception as error:  # sqlalchemy's errors vary by driver; all mean "cannot use it"
        reason = str(error).splitlines()[0][:200].replace(url, redacted(url))
        raise InputError("storage", f"cannot open the study storage {redacted(url)}: {reason}",
                         "a reachable database URL such as postgresql://user:password@host:5432/db, or leave "
                         "storage out for the home's SQLite file") from None


def default_storage(home: "Home") -> str:
    home.settings.home_dir.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{home.settings.studies_path}"


async def run_study(home: "Home", request: StudyRequest, report: Report = silent) -> StudySummary:
    url = request.storage or default_storage(home)
    storage = await asyncio.to_thread(open_storage, url)  # a remote database may take seconds to answer
    device = resolve_device(request.device)
    fs = await build_feature_set(home, _feature_request(request))
    name = request.study or f"{request.target}-{datetime.now(UTC):%Y%m%d-%H%M%S}"
    config = _config(request, fs, home.settings.limits)
    study = _create_or_resume(storage, name, config, request.seed, request.n_trials)
    await (await home.studies()).remember(name, url, config.model_dump(mode="json"))
    fetched = await asyncio.to_thread(stored_funding, home.settings.funding_dir, list(fs.panel.symbols))
    market = Market.of(fs, fetched)
    ran = await asyncio.to_thread(_optimize, study, config, market, device, request.n_trials, request.timeout_s,
                                  report)
    return summarise(study, config, url, ran, market.coverage)


def join(home: "Home", name: str, url: str, trials: int | None, timeout_s: float | None,
         log: Callable[[str], None] = lambda _: None) -> StudySummary:
    """A worker: load the study, rebuild its data, check it is the same, and run trials in this process."""
    storage = open_storage(url)
    study = load(storage, name, seed_offset=os.getpid())
    config = config_of(study)
    if trials is None and not study.user_attrs.get("n_trials"):
        raise InputError("trials", f"study {name!r} records no trial budget", "--trials N")
    request = StudyRequest(target=config.target, symbols=config.symbols, timeframe=config.timeframe,
                           days=config.days, as_of=config.as_of, folds=config.folds, sources=config.sources,
                           market=config.market, capital=config.capital)
    fs = asyncio.run(_feature_set(home, request))
    if fs.record.input_hash != config.input_hash:
        raise InputError("study", f"this worker's candles for {name} differ from the study's (input hash "
                         f"{fs.record.input_hash[:12]} vs {config.input_hash[:12]})",
                         "a worker with the same data sources and span")
    callbacks = [] if trials is not None else [_study_target(study)]

    def progress(fraction: float, message: str) -> None:
        if " done (" in message:  # one line per finished trial, not every boosting round
            log(message)

    market = Market.of(fs, stored_funding(home.settings.funding_dir, list(fs.panel.symbols)))
    ran = _optimize(study, config, market, resolve_device("auto"), trials, timeout_s, progress, callbacks)
    return summarise(study, config, url, ran, market.coverage)


def load(storage, name: str, seed_offset: int = 0) -> optuna.Study:
    try:
        probe = optuna.load_study(study_name=name, storage=storage)
        seed = int(probe.user_attrs.get(CONFIG_KEY, {}).get("seed", 0)) + seed_offset
        return optuna.load_study(study_name=name, storage=storage, **_algorithms(seed))
    except KeyError:
        raise NotFoundError(f"no study {name!r} in this storage; optimize creates studies and trader://studies "
                            "lists them") from None


def config_of(study: optuna.Study) -> StudyConfig:
    attrs = study.user_attrs.get(CONFIG_KEY)
    if attrs is None:
        raise InputError("study", f"study {study.study_name!r} was not created by mcp-trader",
                         "a study that the optimize tool created")
    return StudyConfig.model_validate(attrs)


def summarise(study: optuna.Study, config: StudyConfig, url: str, ran: int,
              funding: list[FundingCoverage] | None = None) -> StudySummary:
    trials = study.get_trials(deepcopy=False)
    counts = _counts(trials)
    complete = [t for t in trials if t.state == TrialState.COMPLETE and t.value is not None]
    best_trial = max(complete, key=_value) if complete else None
    best = _best(best_trial) if best_trial else None
    deflated = _deflated(best_trial, complete, counts) if best_trial else None
    overfitting = _overfitting(best_trial, complete) if best_trial else None
    name = study.study_name
    uri = f"trader://studies/{name}"
    return StudySummary(
        study=name, storage=redacted(url), target=config.target, symbols=config.symbols,
        timeframe=config.timeframe, folds=config.folds, synthetic=config.synthetic, trials=counts, this_run=ran,
        best=best, deflated=deflated, overfitting=overfitting, importances=importances(study), funding=funding,
        verdict=_verdict(best, deflated, overfitting, counts),
        dashboard=f"optuna-dashboard {redacted(url)}", join=f"mcp-trader optimize-worker --study {name} --storage "
        f"'{redacted(url)}'", resources={"summary": uri, "trials": f"{uri}/trials", "trials_chart": f"{uri}/trials.png",
                                          "importances": f"{uri}/importances",
                                          "importances_chart": f"{uri}/importances.png"},
    )


def trial_rows(study: optuna.Study) -> list[TrialRow]:
    rows = []
    for t in study.get_trials(deepcopy=False):
        seconds = (t.datetime_complete - t.datetime_start).total_seconds() if t.datetime_complete and \
            t.datetime_start else None
        rows.append(TrialRow(
            number=t.number, state=t.state.name.lower(), value=t.value, params=t.params,
            fold_sharpes=t.user_attrs.get("fold_sharpes"), total_return=t.user_attrs.get("total_return"),
            trades=t.user_attrs.get("trades"), duration_s=seconds, worker=t.user_attrs.get("worker"),
        ))
    return rows


def importances(study: optuna.Study) -> dict[str, float] | None:
    complete = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))]
    if len(complete) < 4:
        return None  # too few trials to say which parameter matters
    try:
        evaluator = optuna.importance.PedAnovaImportanceEvaluator()
        return {k: float(v) for k, v in optuna.importance.get_param_importances(study, evaluator=evaluator).items()}
    except (ValueError, RuntimeError):
        return None


def _optimize(study: optuna.Study, config: StudyConfig, market: Market, device: str, n_trials: int | None,
              timeout_s: float | None, report: Report, callbacks: list | None = None) -> int:
    done = [0]
    total = n_trials or 1

    def inner(fraction: float, message: str) -> None:
        report(min(done[0] + fraction, total) / total, message)

    def after(study: optuna.Study, trial: FrozenTrial) -> None:
        done[0] += 1
        value = "pruned" if trial.state == TrialState.PRUNED else f"Sharpe {trial.value:.2f}" if trial.value \
            is not None else trial.state.name.lower()
        best = _best_value(study)
        report(done[0] / total, f"trial {trial.number} done ({value}); {done[0]} of {total} in this run; best "
                                f"Sharpe so far {best}")

    objective = Objective(market, config.target, config.folds, config.capital, config.limits, device, inner)
    study.optimize(_tagged(objective), n_trials=n_trials, timeout=timeout_s, callbacks=[after, *(callbacks or [])],
                   catch=())
    return done[0]


def _tagged(objective: Objective):
    worker = f"{socket.gethostname()}:{os.getpid()}"

    def run(trial: optuna.Trial) -> float:
        trial.set_user_attr("worker", worker)
        return objective(trial)

    return run


def _algorithms(seed: int) -> dict:
    """TPE after 10 random trials; a trial is pruned once its Sharpe after a fold is below the median of
    the earlier trials' at the same fold (from the sixth trial on)."""
    return {"sampler": optuna.samplers.TPESampler(seed=seed, n_startup_trials=10),
            "pruner": optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=0)}


def _create_or_resume(storage, name: str, config: StudyConfig, seed: int, n_trials: int) -> optuna.Study:
    study = optuna.create_study(storage=storage, study_name=name, direction="maximize", load_if_exists=True,
                                **_algorithms(seed))
    existing = study.user_attrs.get(CONFIG_KEY)
    if existing is None:
        study.set_user_attr(CONFIG_KEY, config.model_dump(mode="json"))
        study.set_user_attr("n_trials", n_trials)
        return study
    known = StudyConfig.model_validate(existing)
    same = ("target", "symbols", "timeframe", "folds", "input_hash")
    differ = [f for f in same if getattr(known, f) != getattr(config, f)]
    if differ:
        raise InputError("study", f"study {name!r} exists with other settings ({', '.join(differ)})",
                         "the same target, symbols, timeframe, folds and data to resume it, or a new study name")
    return study


def _config(request: StudyRequest, fs: FeatureSet, limits: RiskLimits) -> StudyConfig:
    return StudyConfig(
        target=request.target, symbols=list(fs.panel.symbols), timeframe=fs.spec.timeframe, days=request.days,
        as_of=request.as_of.isoformat() if request.as_of else None, folds=request.folds, capital=request.capital,
        seed=request.seed, sources=request.sources, market=request.market, feature_set_id=fs.id,
        input_hash=fs.record.input_hash, limits=limits, synthetic=fs.record.synthetic,
        package_version=f"{__version__} (python {platform.python_version()}, optuna {optuna.__version__})",
        created_at=now_iso(),
    )


async def _feature_set(home: "Home", request: StudyRequest) -> FeatureSet:
    try:
        return await build_feature_set(home, _feature_request(request))
    finally:
        await home.close()


def _feature_request(request: StudyRequest) -> FeatureRequest:
    days = request.days or DEFAULT_DAYS
    return FeatureRequest(symbols=request.symbols, timeframe=request.timeframe, as_of=request.as_of, days=days,
                          sources=request.sources, market=request.market)


def _counts(trials: list[FrozenTrial]) -> Counts:
    def n(state: TrialState) -> int:
        return sum(1 for t in trials if t.state == state)

    return Counts(total=len(trials), complete=n(TrialState.COMPLETE), pruned=n(TrialState.PRUNED),
                  failed=n(TrialState.FAIL), running=n(TrialState.RUNNING))


def _value(trial: FrozenTrial) -> float:
    """A complete trial's Sharpe: summarise keeps only the complete trials that have one."""
    assert trial.value is not None
    return float(trial.value)


def _best(trial: FrozenTrial) -> Best:
    a = trial.user_attrs
    return Best(number=trial.number, sharpe=_value(trial), params=trial.params,
                fold_sharpes=a.get("fold_sharpes", []), total_return=a.get("total_return", 0.0),
                trades=a.get("trades", 0))


def _deflated(best: FrozenTrial, complete: list[FrozenTrial], counts: Counts) -> Deflated:
    sharpes = [t.user_attrs["sharpe_per_bar"] for t in complete if "sharpe_per_bar" in t.user_attrs]
    a = best.user_attrs
    return deflated_sharpe(a["sharpe_per_bar"], sharpes, counts.complete + counts.pruned, a["bars"], a["skew"],
                           a["kurtosis"])


def _overfitting(best: FrozenTrial, complete: list[FrozenTrial]) -> Overfitting | None:
    """CSCV over the completed trials scored on the same bars as the best (trials of older versions kept no blocks)."""
    bars = [row[0] for row in best.user_attrs.get("block_moments", [])]
    same = [t.user_attrs["block_moments"] for t in complete
            if [row[0] for row in t.user_attrs.get("block_moments", [])] == bars and bars]
    return probability_of_overfitting(same) if len(same) >= 2 else None


def _verdict(best: Best | None, deflated: Deflated | None, overfitting: Overfitting | None, counts: Counts) -> str:
    tried = counts.complete + counts.pruned
    if best is None or deflated is None:
        return f"No trial has completed yet ({counts.total} started, {counts.pruned} pruned, {counts.failed} failed)."
    head = (f"Best of {tried} trials tried ({counts.complete} completed, {counts.pruned} pruned): trial {best.number}, "
            f"out-of-sample Sharpe {best.sharpe:.2f} over the walk-forward test folds. Deflated for {tried} trials, "
            f"the probability that it beats luck is {deflated.deflated_sharpe:.1%} (fluke: {deflated.p_fluke:.1%})")
    if overfitting is not None:
        head += (f"; probability of backtest overfitting (CSCV over {overfitting.trials} completed trials) "
                 f"{overfitting.pbo:.0%}")
    if deflated.significant:
        return head + ": significant at 95 %."
    return head + ": NOT significant — this Sharpe is what trying this many settings produces by chance; do not " \
                  "trade on it."


def _best_value(study: optuna.Study) -> str:
    try:
        return f"{study.best_value:.2f}"
    except ValueError:
        return "n/a"


def _study_target(study: optuna.Study):
    """Stop a worker once the study holds the number of trials its creator asked for."""
    return optuna.study.MaxTrialsCallback(int(study.user_attrs["n_trials"]),
                                          states=(TrialState.COMPLETE, TrialState.PRUNED))
