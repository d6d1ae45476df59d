"""The text tower that encodes queries, run the fastest way the CPU allows (VITRINE_TEXT_TOWER).

A query's vector is one forward pass of the text tower at batch 1 over a handful of tokens:
too little arithmetic to keep two cores busy, so its time goes to reading the weights
(150 MB in float32 for a ViT-B/32-size tower, 12 layers x 512) and to the Python and
dispatch overhead of some 200 small operators. The variants here attack one or both:

* `float32`: the model as loaded (`get_text_features`), the reference.
* `int8`: torch's dynamic quantisation of every Linear layer (int8 weights, activations
  quantised per pass): a quarter of the bytes to read. Each text runs alone
  (`text_by_text`), so its vector never depends on the texts batched with it.
* `bfloat16`: the tower's weights in bfloat16 (half the bytes), where the CPU has bf16
  instructions (AVX512-BF16, AMX).
* `compile`: `torch.compile` (inductor) of the float32 tower, shapes dynamic; fuses the
  small operators, compiles on the first texts of each new shape (seconds on 2 cores).
* `onnx`: the tower exported to ONNX at load time and run by ONNX Runtime with
  its graph optimisations (fused attention, LayerNorm and GELU): no Python per operator.
* `onnx-int8`: the same graph with ONNX Runtime's dynamic int8 quantisation of its
  MatMuls (int8 weights, VNNI kernels where the CPU has them); each text alone, as `int8`.

The ONNX graph is exported every time the encoder loads (2 s for a ViT-B/32-size tower on
2 quiet cores, quantisation included; 4-8 s on a busy machine), into a temporary folder
deleted as soon as ONNX Runtime has read it: no cache to invalidate when the model changes.
Only the text tower is touched (the torch variants work on their own copy of its weights);
image encoding is unchanged. The variants apply in float32 on the CPU (`VITRINE_DEVICE=cpu`,
`VITRINE_DTYPE=float32`); elsewhere the tower runs as loaded.

Measured by `bench/text_tower.py` (bench/results/text_tower.md) on 2 AMD EPYC cores
(AVX512-BF16, VNNI): single-query encode p50 of the ViT-B/32-size tower, and the lowest
cosine to float32 over 3,079 demo-catalogue queries (product names, "a red dress", "ein
rotes Kleid") on the demo model (its text tower 2 layers x 128, trained) and on the random
ViT-B/32-size one (load average 3.5: other work shared the cores):

    text tower   p50 ms  cos min demo  cos min ViT-B/32
    float32      14.9    1             1
    int8          4.9    0.9975        0.9974   (0.992 on the 32-wide tiny CLIP of the tests)
    bfloat16      7.2    0.9999        0.9999
    compile      13.4    1             1        (12 s of compiling first, more per new shape)
    onnx          9.0    1             1
    onnx-int8     4.3    0.9991        0.9983   <- the default: fastest within 0.995

ONNX Runtime's threads spin only within a pass and stop as it ends, so they leave the cores
to the rest of the server between queries; torch's pool stalled at p99 150 ms on the small
demo tower while other processes shared the two cores, ONNX Runtime's at 7 ms (threads
that never spun, then).
"""

from __future__ import annotations

import copy
import logging
import tempfile
import warnings
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, get_args

import numpy as np
import torch

from embedding.settings import TextTowerKind

log = logging.getLogger(__name__)

TEXT_TOWERS: tuple[str, ...] = get_args(TextTowerKind)
TEXT_BY_TEXT = frozenset({"int8", "onnx-int8"})
"""The towers that encode each text alone (`text_by_text`): nothing gained by batching."""

# (input_ids, attention_mask or None) -> (n, dim) float32 features, not yet normalised
RunText = Callable[[torch.Tensor, torch.Tensor | None], torch.Tensor]


class TextTower(torch.nn.Module):
    """`get_text_features` of a CLIP or SigLIP model as a module of its own: the text
    transformer and, for CLIP, the projection; token ids and mask in, features out."""

    def __init__(self, model: Any):
        super().__init__()
        self.text_model = model.text_model
        # CLIP projects the pooled text; SigLIP's text head is inside text_model.
        self.text_projection = getattr(model, "text_projection", None)

    def forward(self, input_ids: torch.Tensor,
                attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        pooled = self.text_model(input_ids=input_ids, attention_mask=attention_mask,
                                 return_dict=True).pooler_output
        return pooled if self.text_projection is None else self.text_projection(pooled)


def bf16_supported() -> bool:
    """Whether this CPU has bfloat16 arithmetic (oneDNN's own check); without it bf16 is
    emulated and slower than float32."""
    mkldnn = getattr(torch.backends, "mkldnn", None)
    return bool(mkldnn is not None and torch.ops.mkldnn._is_mkldnn_bf16_supported())


def for_model(model: Any, kind: str, device: torch.device, dtype: torch.dtype,
              model_id: str) -> tuple[str, RunText]:
    """The `kind` of text tower where it applies (float32 on the CPU), else the model's
    own; and how it runs. A tower that can't be built for an unusual model falls back to
    float32 (slower queries, not a process that cannot start)."""
    if kind != "float32" and (device.type != "cpu" or dtype != torch.float32):
        log.info("VITRINE_TEXT_TOWER=%s applies to float32 on the CPU; the text tower runs "
                 "as loaded (%s on %s)", kind, dtype, device)
        kind = "float32"
    try:
        return kind, build(model, kind, uses_mask=model.config.model_type != "siglip")
    except Exception:
        if kind == "float32":
            raise
        log.warning("the %s text tower could not be built for %s; it runs in float32",
                    kind, model_id, exc_info=True)
        return "float32", build(model, "float32")


def build(model: Any, kind: str, uses_mask: bool = True) -> RunText:
    """A function running `model`'s text tower the `kind` way (one of TEXT_TOWERS).

    `uses_mask`: whether the model reads an attention mask (CLIP does; SigLIP attends to
    its padding by design, and is given none).
    """
    if kind not in TEXT_TOWERS:
        raise ValueError(f"text tower must be one of {TEXT_TOWERS}, got {kind!r}")
    if kind == "float32":
        def run(ids: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
            out = model.get_text_features(input_ids=ids, attention_mask=mask)
            return out.pooler_output if hasattr(out, "pooler_output") else out
        return run
    if kind == "onnx":  # exporting reads the weights, changes none
        return _onnx_runner(TextTower(model).eval(), False, uses_mask)
    if kind == "onnx-int8":
        return text_by_text(_onnx_runner(TextTower(model).eval(), True, uses_mask))
    tower = copy.deepcopy(TextTower(model)).eval()  # the image side keeps its own weights
    if kind == "int8":
        with warnings.catch_warnings():  # torch deprecates quantised tensors, still there
            warnings.simplefilter("ignore")
            tower = torch.ao.quantization.quantize_dynamic(tower, {torch.nn.Linear},
                                                           dtype=torch.qint8)
        return text_by_text(_torch_runner(tower))
    if kind == "bfloat16":
        if not bf16_supported():
            log.warning("this CPU has no bfloat16 instructions: the bfloat16 text tower is "
                        "emulated, slower than float32")
        return _torch_runner(tower.to(torch.bfloat16))
    return _torch_runner(torch.compile(tower, dynamic=True))  # "compile"


def text_by_text(run: RunText) -> RunText:
    """`run` on each text alone, without its padding.

    Dynamic quantisation scales a layer's activations by the largest in the whole batch,
    so a text's vector would change with the texts (and the padding) sharing its pass: a
    query must mean the same whatever arrives with it. At batch 1 an int8 pass costs less
    than a batch of float32 does per text, so batching has little left to save.
    """
    def each(ids: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        if len(ids) == 1 and (mask is None or bool(mask.all())):
            return run(ids, mask)
        rows = []
        for i in range(len(ids)):
            keep = slice(None) if mask is None else mask[i].bool()
            rows.append(run(ids[i:i + 1, keep],
                            None if mask is None else mask[i:i + 1, keep]))
        return torch.cat(rows)
    return each


def _torch_runner(tower: Callable[..., torch.Tensor]) -> RunText:
    def run(ids: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        return tower(ids, mask).float()
    return run


# -- ONNX Runtime ------------------------------------------------------------------------------
def export_onnx(tower: TextTower, path: Path, uses_mask: bool = True) -> Path:
    """The tower as an ONNX graph in `path`, batch size and text length left free."""
    ids = torch.ones((2, 7), dtype=torch.long)
    names = ["input_ids", "attention_mask"] if uses_mask else ["input_ids"]
    inputs: tuple[torch.Tensor, ...] = (ids, torch.ones_like(ids)) if uses_mask else (ids,)
    with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
        warnings.simplefilter("ignore")  # the tracer's notes on Python branches it fixed
        torch.onnx.export(tower, inputs, path, input_names=names, output_names=["features"],
                          dynamic_axes={**{n: {0: "batch", 1: "tokens"} for n in names},
                                        "features": {0: "batch"}},
                          opset_version=17, dynamo=False)
    return path


def has_vnni(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """Whether the CPU has VNNI (AVX512-VNNI or AVX-VNNI), from Linux's cpuinfo flags;
    False where that can't be read."""
    try:
        flags = set(cpuinfo.read_text().split())
    except OSError:
        return False
    return bool(flags & {"avx512_vnni", "avx_vnni"})


def quantise_onnx(source: Path, path: Path, reduce_range: bool | None = None) -> Path:
    """ONNX Runtime's dynamic int8 quantisation of the graph's MatMuls, into `path`.

    7-bit weights (`reduce_range`) only on CPUs without VNNI (None: asks `has_vnni`), as
    ONNX Runtime advises. Without VNNI (AVX2 only, as on a 2-core AMD EPYC VM) its u8s8
    kernels saturate on full-range int8 weights: the tiny test models' query vectors fell
    to cosine 0.86-0.99 of float32 there, against the 0.995 bound, and 7-bit weights give
    the ViT-B/32-size tower 0.9957 over 3,079 catalogue queries (bench/results/text_tower_avx2.md).
    With VNNI, 7-bit weights cost precision for nothing: on an Intel Xeon with AVX-512
    VNNI the demo model's lowest cosine was 0.9864 with them and 0.9970 without, the
    ViT-B/32-size tower's 0.9957 and 0.9983 (bench/results/text_tower_vnni_7bit.md and
    text_tower_vnni_fullrange.md). A scale per output channel was not kept: it moved the
    test suite's demo model's "red dress" top 10 under tests/test_search_behaviour.py's
    bound.
    """
    from onnxruntime.quantization import QuantType, quantize_dynamic

    if reduce_range is None:
        reduce_range = not has_vnni()
    with _quiet_root_log():
        quantize_dynamic(source, path, weight_type=QuantType.QInt8,
                         op_types_to_quantize=["MatMul"], reduce_range=reduce_range)
    return path


@contextmanager
def _quiet_root_log() -> Iterator[None]:
    """ONNX Runtime's quantiser logs a line per tensor on the root logger: drop them."""
    def keep(record: logging.LogRecord) -> bool:
        return "onnxruntime" not in record.pathname
    root = logging.getLogger()
    root.addFilter(keep)
    try:
        yield
    finally:
        root.removeFilter(keep)


def _onnx_runner(tower: TextTower, quantise: bool, uses_mask: bool) -> RunText:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # torch's intra-op thread count (the process's cores, or OMP_NUM_THREADS). The threads
    # spin between the operators of a pass (a text's ~200 small operators each woke a
    # sleeping thread otherwise: p50 4.9 against 3.9 ms, the same CPU time a query) and stop
    # as the pass ends, leaving the cores to the store and the server between queries.
    options.intra_op_num_threads = torch.get_num_threads()
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "1")
    options.add_session_config_entry("session.force_spinning_stop", "1")
    # The graph lives in a temporary folder only until ONNX Runtime has read it.
    with tempfile.TemporaryDirectory(prefix="vitrine-text-tower-") as tmp:
        graph = export_onnx(tower, Path(tmp) / "float32.onnx", uses_mask)
        if quantise:
            graph = quantise_onnx(graph, Path(tmp) / "int8.onnx")
        session = ort.InferenceSession(str(graph), options, providers=["CPUExecutionProvider"])

    def run(ids: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        feeds: Mapping[str, np.ndarray] = {"input_ids": ids.numpy()}
        if uses_mask:  # the graph takes a mask: all ones where the tokenizer gave none
            feeds = {**feeds, "attention_mask": (torch.ones_like(ids) if mask is None
                                                 else mask).numpy()}
        return torch.from_numpy(session.run(None, dict(feeds))[0])
    return run
