def test_the_size_of_an_openvino_ir_counts_its_weights(tmp_path) -> None:
    from bienbao.runtime.backends import is_model_path, model_size_bytes

    folder = tmp_path / "signs_openvino_model"
    folder.mkdir()
    (folder / "signs.xml").write_bytes(b"x" * 10)
    (folder / "signs.bin").write_bytes(b"w" * 1000)
    (folder / "metadata.yaml").write_bytes(b"m" * 5)
    assert model_size_bytes(folder / "signs.xml") == 1010  # the graph and its weights
    assert model_size_bytes(folder) == 1015  # everything the folder ships
    onnx = tmp_path / "signs.onnx"
    onnx.write_bytes(b"o" * 7)
    (tmp_path / "signs.bin").write_bytes(b"?" * 3)  # not an IR's weights: an .onnx has none beside it
    assert model_size_bytes(onnx) == 7
    assert is_model_path(folder) and is_model_path(onnx) and not is_model_path(tmp_path)  # a plain folder is not
