"""OpenVINO IR export (``bienbao export --format openvino``): the checkpoint's own scales as
FakeQuantize, metadata in rt_info, written whole, and OpenVINO's integer graph computing what the
fake-quant model computes on real frames."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from bienbao.trainer.export import EXPORTERS, ExportSpec, export
from bienbao.trainer.formats import FORMATS

ov = pytest.importorskip("openvino", reason="openvino (bienbao-trainer[openvino]) is not installed")

IMGSZ = 160
OV_POLICY = "experiments/exp6_openvino.yaml"


@pytest.fixture(scope="module")
def ov_export(tmp_path_factory, ptq_checkpoint) -> dict:
    checkpoint = ptq_checkpoint(IMGSZ, OV_POLICY)
    out = tmp_path_factory.mktemp("export")
    made = export(ExportSpec(checkpoint, out, ("openvino",), "openvino", IMGSZ))
    return {"checkpoint": checkpoint, "out": out, "artifacts": {a.format: a for a in made}}


def test_every_format_has_one_exporter() -> None:
    assert set(EXPORTERS) == set(FORMATS)
    for entry in EXPORTERS.values():
        assert set(entry.needs) <= set(FORMATS)


def test_the_ir_is_made_from_the_onnx_file_and_carries_its_metadata(ov_export) -> None:
    from bienbao.runtime import Detector

    artifacts = ov_export["artifacts"]
    assert list(artifacts) == ["onnx", "openvino"]  # the ONNX file it needs, first
    xml = artifacts["openvino"].path
    assert xml.parent == ov_export["out"] / "openvino" and xml.with_suffix(".bin").is_file()
    assert sorted(p.name for p in xml.parent.iterdir()) == [xml.with_suffix(".bin").name, xml.name]  # no temp files
    detector = Detector(xml)  # .xml -> the openvino backend
    assert detector.backend.name == "openvino"
    assert detector.metadata == artifacts["onnx"].metadata
    assert detector.metadata.quantization.target == "openvino" and detector.metadata.quantization.weight_bits == 8


#: ops that move integers without changing their grid (OpenVINO carries the grid through them)
GRID_PRESERVING = ("Concat", "Slice", "StridedSlice", "VariadicSplit", "Split", "MaxPool", "Interpolate", "Reshape")


def _reads_a_grid(node) -> bool:
    """Every path back from ``node``'s first input reaches a FakeQuantize through grid-preserving ops."""
    if node.get_type_name() == "FakeQuantize":
        return True
    if node.get_type_name() not in GRID_PRESERVING:
        return False
    sources = [v.get_node() for v in node.input_values()]
    data = sources if node.get_type_name() == "Concat" else sources[:1]
    return all(_reads_a_grid(source) for source in data)


def test_every_integer_conv_reads_a_fake_quantize(ov_export) -> None:
    model = ov.Core().read_model(str(ov_export["artifacts"]["openvino"].path))
    convs = [op for op in model.get_ops() if op.get_type_name() == "Convolution"]
    integer = [c for c in convs if _reads_a_grid(c.input_value(0).get_node())]
    assert len(convs) == 64 and len(integer) == 63  # every conv but the DFL's fixed one
    dfl = next(c for c in convs if c not in integer)
    assert dfl.input_value(0).get_node().get_type_name() == "Softmax"  # ultralytics' DFL, OpenVINO's fastest form


def test_no_c2f_or_sppf_concatenation_is_requantized(ov_export) -> None:
    """Their inputs arrive on their grid (``SharedGrid``): no FakeQuantize after a C2f's or the
    SPPF's Concat; the neck's four Concats keep theirs (their inputs come from blocks that feed
    others too)."""
    model = ov.Core().read_model(str(ov_export["artifacts"]["openvino"].path))
    after_concat = [
        op.get_friendly_name()
        for op in model.get_ops()
        if op.get_type_name() == "FakeQuantize" and op.input_value(0).get_node().get_type_name() == "Concat"
    ]
    assert after_concat and not [name for name in after_concat if "concat_output_quantizer" in name]


def test_openvino_matches_the_fake_quant_model_on_real_frames(ov_export, valid_frames, agreeing_detections) -> None:
    """In f32 (no bf16 rounding of the float parts), OpenVINO's int8 kernels give the fake-quant
    model's detections: >= 90% of its boxes (conf 0.05) have a twin of the same class, IoU > 0.9."""
    import cv2
    from ultralytics.nn.tasks import load_checkpoint

    from bienbao.runtime import Detector
    from bienbao.runtime.preprocess import preprocess
    from bienbao.trainer.export.onnx_export import prepare_for_export

    model, _ = load_checkpoint(ov_export["checkpoint"])
    traced = prepare_for_export(model, "openvino")
    backend = Detector(ov_export["artifacts"]["openvino"].path, precision="f32").backend
    matched = total = 0
    for image in valid_frames:
        x = preprocess(cv2.imread(str(image)), (IMGSZ, IMGSZ))[0]
        with torch.no_grad():
            expected = traced(torch.from_numpy(x))
        got = torch.from_numpy(backend.infer(x))
        assert (got - expected).abs()[0].median() < 1e-2  # pixels and scores: rounding of a few requantizations
        agreeing, found = agreeing_detections(expected, got)
        matched, total = matched + agreeing, total + found
    assert total >= 3 and matched / total >= 0.9, f"{matched}/{total} detections agree"


def test_an_engine_of_the_openvino_layout_is_refused(ov_export, tmp_path) -> None:
    with pytest.raises(ValueError, match="TensorRT engine needs the tensorrt layout"):
        export(ExportSpec(ov_export["checkpoint"], tmp_path, ("engine",), "openvino", IMGSZ))
    assert not any(Path(tmp_path).iterdir())  # refused before anything was written


def test_a_checkpoint_is_exported_in_the_layout_it_was_made_in(ov_export, tmp_path) -> None:
    """Its graph is its layout's whatever --target says: a mislabelled file is refused, naming the target."""
    with pytest.raises(ValueError, match="openvino layout: export it with --target openvino"):
        export(ExportSpec(ov_export["checkpoint"], tmp_path, ("onnx",), "onnxruntime", IMGSZ))


def test_a_folder_with_a_comma_in_its_name_is_a_folder(ov_export, tmp_path) -> None:
    """OpenVINO's converter splits a path string at commas; the exporter hands it the file's bytes."""
    from bienbao.trainer.export.openvino_ir import export_openvino

    onnx = ov_export["artifacts"]["onnx"]
    folder = tmp_path / "runs, 384x640"
    folder.mkdir()
    copy = folder / onnx.path.name
    copy.write_bytes(onnx.path.read_bytes())
    xml = export_openvino(copy, onnx.metadata, folder / "openvino")
    assert xml.is_file() and xml.with_suffix(".bin").is_file()
