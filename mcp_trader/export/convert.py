"""Native models → ONNX graphs that output what the native predict_proba returns: calibrated probabilities.

XGBoost: onnxmltools turns the booster's trees into one TreeEnsembleClassifier; its softmax is replaced by the
calibration, softmax(margins / T), as two ONNX nodes. A return regressor's trees (TreeEnsembleRegressor) are
followed by its three-point probabilities (models.base.three_point) as seven nodes. LSTM: the network wrapped
with its calibration and the return head's scale, exported by torch's torch.export-based exporter (the default
since torch 2.9; the TorchScript one is deprecated) with a dynamic batch axis. xgboost, onnxmltools and torch
load only here.
"""

import json
import warnings

import onnx
from onnx import TensorProto, helper

from mcp_trader.models.base import CLASSES

OPSET = 18  # default ONNX domain: well inside what current ONNX Runtime, TensorRT and torch support
ML_OPSET = 3  # ai.onnx.ml: TreeEnsembleClassifier-3
ONNXMLTOOLS_OPSET = 15  # the most onnxmltools 1.16 converts to; only its tree node is kept
BATCH = "batch"
XGB_INPUT, LSTM_INPUT = "features", "sequences"
PROBABILITIES, RETURN = "probabilities", "return"


def xgboost_to_onnx(booster, temperature: float, metadata: dict[str, str],
                    regression: bool = False) -> onnx.ModelProto:
    """The booster's trees with raw margins out, then softmax(margins / T), or a regressor's forecast as three-point
    probabilities: (batch, features) → (batch, 3)."""
    import xgboost as xgb
    from onnxmltools.convert import convert_xgboost
    from onnxmltools.convert.common.data_types import FloatTensorType

    n = booster.num_features()
    clone = xgb.Booster(model_file=bytearray(booster.save_raw("ubj")))
    clone.feature_names = None  # onnxmltools reads split features as "f<index>" and rejects real names
    converted = convert_xgboost(clone, initial_types=[(XGB_INPUT, FloatTensorType([None, n]))],
                                target_opset=ONNXMLTOOLS_OPSET)
    op = "TreeEnsembleRegressor" if regression else "TreeEnsembleClassifier"
    (trees,) = [node for node in converted.graph.node if node.op_type == op]
    for attribute in trees.attribute:
        if attribute.name == "post_transform":
            attribute.s = b"NONE"
    del trees.output[:]
    if regression:
        trees.output.append("forecast")
        nodes, constants = [trees, *_three_point_nodes("forecast")], _three_point_constants()
    else:
        trees.output.extend(["label", "margins"])
        nodes = [trees, helper.make_node("Div", ["margins", "temperature"], ["scaled"]),
                 helper.make_node("Softmax", ["scaled"], [PROBABILITIES], axis=-1)]
        constants = [helper.make_tensor("temperature", TensorProto.FLOAT, [], [temperature])]
    graph = helper.make_graph(
        nodes, "xgboost_return" if regression else "xgboost_calibrated",
        [helper.make_tensor_value_info(XGB_INPUT, TensorProto.FLOAT, [BATCH, n])],
        [helper.make_tensor_value_info(PROBABILITIES, TensorProto.FLOAT, [BATCH, len(CLASSES)])],
        initializer=constants,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET),
                                                    helper.make_opsetid("ai.onnx.ml", ML_OPSET)],
                              producer_name="mcp-trader")
    return _finish(model, metadata)


def _three_point_nodes(forecast: str) -> list:
    """z = clip(forecast, −1, 1) → [max(−z, 0), 1 − |z|, max(z, 0)], columns SELL, HOLD, BUY."""
    return [
        helper.make_node("Clip", [forecast, "minus_one", "one"], ["z"]),
        helper.make_node("Relu", ["z"], ["buy"]),
        helper.make_node("Neg", ["z"], ["negated"]),
        helper.make_node("Relu", ["negated"], ["sell"]),
        helper.make_node("Abs", ["z"], ["size"]),
        helper.make_node("Sub", ["one", "size"], ["hold"]),
        helper.make_node("Concat", ["sell", "hold", "buy"], [PROBABILITIES], axis=1),
    ]


def _three_point_constants() -> list:
    return [helper.make_tensor("minus_one", TensorProto.FLOAT, [], [-1.0]),
            helper.make_tensor("one", TensorProto.FLOAT, [], [1.0])]


def lstm_to_onnx(learner, metadata: dict[str, str]) -> onnx.ModelProto:
    """The network with softmax(logits / T) and the return head in log-return units:
    (batch, seq_len, features + 1) → probabilities (batch, 3), return (batch,)."""
    import torch

    from mcp_trader.export.calibrated import CalibratedLSTM

    p = learner.params
    wrapped = CalibratedLSTM(learner.net, learner.temperature, learner.return_std).cpu().eval()
    # two rows, not one: torch.export specialises a dimension of size 1 to a constant
    example = torch.zeros(2, p.seq_len, len(learner.mean) + 1)
    # torch.export warns about its own internals (deprecations, LSTM weights "assigned during export") on every
    # call: noise in the server's log that a user can do nothing about
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", (FutureWarning, UserWarning, DeprecationWarning))
        program = torch.onnx.export(
            wrapped, (example,), None, input_names=[LSTM_INPUT], output_names=[PROBABILITIES, RETURN],
            dynamic_shapes={"x": {0: torch.export.Dim(BATCH)}}, opset_version=OPSET, dynamo=True, verbose=False,
            optimize=True,
        )
    if program is None:  # only without dynamo, which writes to a file instead
        raise RuntimeError("torch.onnx.export returned no program")
    return _finish(program.model_proto, metadata)


def lstm_exporter() -> str:
    import torch

    return f"torch.onnx.export (torch.export-based, dynamo=True), torch {torch.__version__}"


def xgboost_exporter(regression: bool = False) -> str:
    import onnxmltools

    nodes = "three-point probability nodes (Clip, Relu, Neg, Abs, Sub, Concat)" if regression else (
        "calibration nodes (Div, Softmax)")
    return f"onnxmltools.convert_xgboost {onnxmltools.__version__} + {nodes}"


def opsets(model: onnx.ModelProto) -> dict[str, int]:
    return {o.domain: o.version for o in model.opset_import}


def _finish(model: onnx.ModelProto, metadata: dict[str, str]) -> onnx.ModelProto:
    helper.set_model_props(model, {f"mcp_trader.{k}": v if isinstance(v, str) else json.dumps(v)
                                   for k, v in metadata.items()})
    onnx.checker.check_model(model, full_check=True)
    return model

