"""Layout, precision and format: every combination decided in one place, and the places that ask
(the export config, the pipeline, the engine builder, the CLI) ask it."""

from __future__ import annotations

import itertools

import pytest

from bienbao.quant import ConfigError
from bienbao.trainer.formats import EXPORT_TARGETS, FORMATS, LAYOUTS, check_combination


@pytest.mark.parametrize(("target", "fmt"), list(itertools.product(EXPORT_TARGETS, FORMATS)))
def test_every_target_and_format(target, fmt) -> None:
    if fmt == "engine" and target in ("onnxruntime", "openvino"):
        with pytest.raises(ValueError, match="TensorRT engine needs the tensorrt layout"):
            check_combination(target, (fmt,))
    else:
        check_combination(target, (fmt,))


def test_unknown_names_list_the_known_ones() -> None:
    with pytest.raises(ValueError, match="onnxruntime, openvino, tensorrt, fp32"):
        check_combination("coreml_layout", ("onnx",))
    with pytest.raises(ValueError, match="onnx, openvino, tflite, engine"):
        check_combination("tensorrt", ("coreml",))


def test_the_export_config_and_the_cli_ask_the_same_place(tmp_path) -> None:
    import argparse

    from bienbao.trainer.cli.commands import register_export
    from bienbao.trainer.config import load_export_config

    path = tmp_path / "export.yaml"
    path.write_text("formats: [onnx, engine]\ntarget: onnxruntime\n")
    with pytest.raises(ConfigError, match="TensorRT engine needs the tensorrt layout"):
        load_export_config(path)
    parser = argparse.ArgumentParser()
    register_export(parser.add_subparsers())
    target = next(a for a in parser._subparsers._group_actions[0].choices["export"]._actions if a.dest == "target")
    assert tuple(target.choices) == EXPORT_TARGETS and set(LAYOUTS) < set(target.choices)


def test_the_pipeline_refuses_an_engine_of_the_cpu_layout_before_training(tmp_path) -> None:
    from bienbao.trainer.config import load_qat_config, load_train_config
    from bienbao.trainer.pipeline import PipelineOptions, run_pipeline

    options = PipelineOptions(load_train_config(), load_qat_config(), export_formats=("onnx", "engine"))
    with pytest.raises(ConfigError, match="trains the onnxruntime layout.*TensorRT engine needs"):
        run_pipeline(options)
