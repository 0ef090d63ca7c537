"""export_onnx, list_exports and the trader://exports resources through an MCP client, offline.

One server for the module, on the bundled hourly sample: a small model of each kind is trained once through
train_model and exported once; bad input is a tool error, and the server keeps serving.
"""

from collections.abc import AsyncIterator

import pytest
from mcp import Client
from mcp_calls import call, error_of, read_json

from mcp_trader.config import Settings
from mcp_trader.export.records import ExportRecord
from mcp_trader.server import build_server

pytestmark = pytest.mark.anyio

BASE = {"symbols": ["BTC/USDT", "ETH/USDT", "SOL/USDT"], "days": 120, "as_of": "2024-09-30", "folds": 2,
        "wait_seconds": 300}
XGB = {"n_estimators": 20}
LSTM = {"hidden": 8, "layers": 1, "seq_len": 8, "epochs": 1, "samples_per_epoch": 256, "batch_size": 64}
RUNS = {
    "xgboost": {"kind": "xgboost", "xgboost": XGB},
    "lstm": {"kind": "lstm", "lstm": LSTM},
    "ensemble": {"kind": "ensemble", "xgboost": XGB, "lstm": LSTM},
}


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
async def mcp(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Client]:
    settings = Settings(home=tmp_path_factory.mktemp("export-tool") / "home", offline=True)
    async with Client(build_server(settings)) as connected:
        yield connected


@pytest.fixture(scope="module")
async def models(mcp: Client) -> dict[str, str]:
    return {kind: (await call(mcp, "train_model", {**BASE, **args}))["result"]["model_id"]
            for kind, args in RUNS.items()}


@pytest.fixture(scope="module")
async def exports(mcp: Client, models: dict[str, str]) -> dict[str, dict]:
    """Each kind's export_onnx answer and the progress notifications its call received."""
    runs = {}
    for kind, model_id in models.items():
        updates = []

        async def progress(done: float, total: float | None, message: str | None, updates=updates) -> None:
            updates.append((done, message))

        answer = await call(mcp, "export_onnx", {"model_id": model_id, "wait_seconds": 120},
                            progress_callback=progress)
        runs[kind] = {"answer": answer, "certificate": answer["result"], "updates": updates}
    return runs


async def test_the_tools_are_listed_with_their_contracts(mcp: Client):
    tools = {t.name: t for t in (await mcp.list_tools()).tools}
    export = tools["export_onnx"]
    props = export.input_schema["properties"]
    assert export.input_schema["required"] == ["model_id"]
    assert {"model_id", "validate", "kind", "wait_seconds"} == set(props)
    assert props["validate"]["default"] is True and props["wait_seconds"]["maximum"] == 300
    assert {"job_id", "status", "result"} <= set(export.output_schema["properties"])
    assert "0.1 %" in export.description and "certificate" in export.description
    assert export.annotations.read_only_hint is False and export.annotations.destructive_hint is False
    assert tools["list_exports"].annotations.read_only_hint is True


@pytest.mark.parametrize("kind", list(RUNS))
async def test_each_kind_exports_with_its_parity_figures(models: dict, exports: dict, kind: str):
    run = exports[kind]
    assert run["answer"]["status"] == "succeeded" and run["answer"]["progress"] == 1.0
    cert = ExportRecord.model_validate(run["certificate"])
    assert cert.model_id == models[kind] and cert.kind == kind and cert.validated
    assert cert.parity.passed and cert.parity.max_relative_diff < 1e-3 and cert.parity.threshold == 0.001
    assert cert.parity.held_out.rows > 100
    outputs = {f.output: f for f in cert.parity.outputs}
    assert "probabilities" in outputs and ("return" in outputs) == (kind != "xgboost")
    assert all(f.max_relative_diff < 1e-3 for f in outputs.values())
    assert cert.latency.single_row.rows == 1 and cert.latency.batch.rows > 100
    assert [p.part for p in cert.parts] == (["xgboost", "lstm"] if kind == "ensemble" else [kind])
    assert all(len(f.sha256) == 64 for f in cert.files)
    assert len({m for _, m in run["updates"]}) > 1  # progress notifications came while it ran


async def test_the_certificate_and_the_listing_read_back(mcp: Client, exports: dict):
    listed = {e["export_id"]: e for e in await call_list(mcp)}
    resource = {e["export_id"]: e for e in (await read_json(mcp, "trader://exports"))["exports"]}
    assert listed == resource
    for kind, run in exports.items():
        cert = run["certificate"]
        assert await read_json(mcp, f"trader://exports/{cert['id']}") == cert
        entry = listed[cert["id"]]
        assert entry["model_id"] == cert["model_id"] and entry["kind"] == kind and entry["parity_passed"] is True
        assert entry["max_relative_diff"] == cert["parity"]["max_relative_diff"]
        assert entry["uri"] == f"trader://exports/{cert['id']}"
        features = (await read_json(mcp, f"trader://models/{cert['model_id']}"))["features"]
        assert all(p["input"]["features"] == features for p in cert["parts"])


async def call_list(mcp: Client) -> list[dict]:
    return (await call(mcp, "list_exports", {}))["result"]


async def test_one_part_of_an_ensemble_and_an_unvalidated_export(mcp: Client, models: dict):
    part = (await call(mcp, "export_onnx", {"model_id": models["ensemble"], "kind": "xgboost",
                                            "wait_seconds": 120}))["result"]
    assert part["kind"] == "xgboost" and part["model_kind"] == "ensemble" and part["parity"]["passed"]
    quick = (await call(mcp, "export_onnx", {"model_id": models["lstm"], "validate": False,
                                             "wait_seconds": 120}))["result"]
    assert quick["validated"] is False and quick["parity"] is None and quick["latency"] is None
    assert any("NOT VALIDATED" in n for n in quick["notes"])


async def test_a_job_id_answers_when_the_wait_is_short(mcp: Client, models: dict):
    answer = await call(mcp, "export_onnx", {"model_id": models["xgboost"], "wait_seconds": 0})
    assert answer["kind"] == "export_onnx" and answer["job_id"].startswith("job-")
    done = await call(mcp, "get_job", {"job_id": answer["job_id"], "wait_seconds": 120})
    assert done["status"] == "succeeded" and done["result"]["model_id"] == models["xgboost"]
    assert (await read_json(mcp, f"trader://exports/{done['result']['id']}"))["id"] == done["result"]["id"]


BAD_INPUT = [
    pytest.param({"model_id": "mdl-nope"}, "mdl-nope", ["no model", "list_models"], id="unknown-model"),
    pytest.param({"kind": "forest"}, "kind", ["xgboost", "lstm", "ensemble"], id="kind-that-does-not-exist"),
    pytest.param({"kind": "lstm"}, "kind", ["is an xgboost model", "no lstm part", "xgboost"],
                 id="kind-the-model-lacks"),
    pytest.param({"kind": "ensemble"}, "kind", ["no ensemble part"], id="ensemble-of-a-single-model"),
    pytest.param({"validate": "perhaps"}, "validate", ["bool"], id="validate-not-a-boolean"),
]


@pytest.mark.parametrize(("args", "field", "words"), BAD_INPUT)
async def test_bad_input_is_a_tool_error_naming_it(mcp: Client, models: dict, args: dict, field: str,
                                                   words: list[str]):
    text = await error_of(mcp, "export_onnx", {"model_id": models["xgboost"], **args})
    assert field in text, text
    for word in words:
        assert word in text, text
    assert "Traceback" not in text
    await call(mcp, "list_exports", {})  # the server keeps serving


async def test_an_unknown_export_is_a_resource_error(mcp: Client):
    with pytest.raises(Exception, match="exp-nope"):
        await read_json(mcp, "trader://exports/exp-nope")
    assert (await read_json(mcp, "trader://exports"))["exports"] is not None  # still serving
