"""The fault catalogue (issues 16 and 33): every bad input and fault, made real, one line per case.

Runs the tests that make each fault happen (a killed process, a tmpfs that fills up, a read-only
mount, a camera that will not come back, a file that is not what its name says...) and prints, per
numbered item (1-20: issue 16's first round; 21 on: issue 33's second round, the fleet feed, the
live view, training runs, configs, outputs and model files), what happens now and whether the
check passed:

    python benchmarks/faults.py            # in an environment with every package and its test extra
    python benchmarks/faults.py -k 2 5 12  # only these items

Full-disk and read-only cases mount a tmpfs, which needs root (CI runs as root); elsewhere they
are reported as skipped with the reason. Item 19 is a statement, not a test (see its line).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RT, TR, BE = "packages/runtime/tests", "packages/trainer/tests", "packages/bench/tests"

#: item -> (what now happens, the tests that make it happen)
CATALOGUE: dict[int, tuple[str, list[str]]] = {
    1: (
        "qat --resume writes into the resumed run's own layout; a finished run is refused in one line",
        [f"{TR}/test_runs.py::test_interrupted_qat_resumes_with_identical_quantizer_state"],
    ),
    2: (
        "detect --save-video: .mkv plays after SIGKILL, .mp4 in segments (closed ones play), full disk -> exit 2",
        [
            f"{RT}/test_faults.py::test_2_an_mkv_video_plays_after_the_process_is_killed",
            f"{RT}/test_faults.py::test_2_an_mp4_is_written_in_segments_and_the_closed_ones_play_after_a_kill",
            f"{RT}/test_faults.py::test_2_a_full_disk_stops_the_video_with_an_error_and_a_non_zero_exit",
        ],
    ),
    3: (
        "export on a full disk leaves no truncated .onnx (temporary file + rename); read-only folder named",
        [f"{TR}/test_export_onnx.py::test_a_full_disk_leaves_no_truncated_onnx_and_a_read_only_folder_is_named"],
    ),
    4: (
        "bench --out checked before measuring; latency saved before the memory pass",
        [
            f"{BE}/test_faults.py::test_4_a_read_only_out_folder_is_refused_before_measuring",
            f"{BE}/test_faults.py::test_4_the_latency_figures_are_saved_before_the_memory_pass",
        ],
    ),
    5: (
        "--jsonl on a full disk: whole lines only, one message, exit 2",
        [
            f"{RT}/test_faults.py::test_5_json_lines_on_a_full_disk_end_with_a_whole_line_and_one_message",
            f"{RT}/test_faults.py::test_5_a_failed_line_is_cut_back_to_the_last_whole_line",
        ],
    ),
    6: (
        "a schedule outside --epochs is scaled to the run and said; INT8 export refuses activations never enabled",
        [
            f"{TR}/test_runs.py::test_a_schedule_longer_than_the_run_is_scaled_to_it_and_said",
            f"{TR}/test_config.py::test_the_schedule_is_fitted_to_the_run_keeping_its_order",
            f"{TR}/test_export_onnx.py::test_a_checkpoint_whose_activation_quantizers_never_ran_is_not_exported_as_int8",
        ],
    ),
    7: (
        "detect --every-frame: the reader is woken per frame (no 0.1 s wait, no ~10 FPS cap)",
        [f"{RT}/test_faults.py::test_7_every_frame_wakes_the_reader_instead_of_waiting_out_its_timeout"],
    ),
    8: (
        "evaluate of a model with other classes: refused, naming the count or the differing names",
        [
            f"{TR}/test_faults.py::test_8_other_class_names_are_named_not_scored_as_zero",
            f"{TR}/test_faults.py::test_8_evaluate_refuses_a_checkpoint_trained_on_other_classes",
        ],
    ),
    9: (
        "check-data: half JPEG is an error, zero-size box a warning; bench --frames 0 and unreadable images named",
        [
            f"{TR}/test_faults.py::test_9_check_data_finds_a_half_jpeg_and_a_zero_size_box",
            f"{BE}/test_faults.py::test_9_frames_zero_and_an_unreadable_image_are_named",
        ],
    ),
    10: (
        "a camera outage counts once, is announced (lost at, each attempt, back after) and backs off",
        [f"{RT}/test_faults.py::test_10_one_outage_of_four_attempts_is_one_reconnect_and_each_is_announced"],
    ),
    11: (
        "--set ultralytics.mosiac=0.5: refused at load, 'did you mean mosaic?'",
        [f"{TR}/test_faults.py::test_11_an_unknown_ultralytics_key_names_the_near_match"],
    ),
    12: (
        "text .pt, truncated / 2-D .onnx, non-JSON bench compare, read-only outputs: one line each, exit 2",
        [
            f"{TR}/test_faults.py::test_12_a_text_file_renamed_pt_is_one_line_for_evaluate_and_export",
            f"{TR}/test_faults.py::test_12_read_only_outputs_of_evaluate_and_calibrate_are_named",
            f"{RT}/test_faults.py::test_12_a_truncated_onnx_is_named_in_one_line",
            f"{RT}/test_faults.py::test_12_an_onnx_with_a_2d_input_is_refused_with_its_shape",
            f"{RT}/test_faults.py::test_12_a_read_only_output_folder_is_named",
            f"{BE}/test_faults.py::test_12_bench_compare_names_a_file_that_is_not_json",
            f"{RT}/test_shipped_model.py",
        ],
    ),
    13: (
        "TensorBoard that cannot be written warns once; training goes on",
        [f"{TR}/test_faults.py::test_13_tensorboard_on_a_read_only_folder_warns_once_and_does_not_raise"],
    ),
    14: (
        "detect model.engine --threads N: the option is reported as not applying, never passed",
        [f"{RT}/test_faults.py::test_14_threads_is_not_passed_to_a_backend_that_does_not_take_it"],
    ),
    15: (
        "deploy/jetson/install.sh builds pycuda with CUDA's nvcc on PATH and CUDA_ROOT set, or says how",
        [f"{RT}/test_faults.py::test_15_the_install_scripts_cuda_environment_finds_nvcc_or_says_how"],
    ),
    16: (
        "missing TensorRT: says JetPack provides it (apt, --system-site-packages) and how to check",
        [f"{RT}/test_faults.py::test_16_missing_tensorrt_says_what_jetpack_provides_not_an_empty_extra"],
    ),
    17: (
        "TensorRT 8.5 / 8.6 (JetPack 5.1 / 6.0) accepted; older ones told which JetPack and why",
        [f"{RT}/test_faults.py::test_17_tensorrt_8_5_and_8_6_are_supported_and_older_ones_say_which_jetpack"],
    ),
    18: (
        "--backend onnxruntime-cuda / onnxruntime-tensorrt; the provider used is in the summary",
        [f"{RT}/test_faults.py::test_18_onnxruntime_gpu_providers_are_choosable_and_the_one_used_is_reported"],
    ),
    19: (
        "not changed: the TensorRT layout keeps the head's final convs float (exp1); TensorRT figures are "
        "for that head",
        [],
    ),
    20: (
        "test_live checks the back-off delays; test_runs compares PTQ's mAP with FP32's on the same frames",
        [
            f"{RT}/test_live.py::test_a_camera_that_drops_is_reopened_and_the_loop_goes_on",
            f"{TR}/test_runs.py::test_ptq_writes_a_checkpoint_that_ultralytics_validates",
        ],
    ),
    21: (
        "monitor: a malformed message (first_time 'abc', not JSON, wrong types) rejected with its reason and "
        "counted; later boards still count",
        [
            f"{RT}/test_mqtt.py::test_a_malformed_message_is_rejected_with_its_reason_and_later_ones_still_count",
            f"{RT}/test_mqtt.py::test_the_monitor_survives_a_malformed_message_and_counts_the_boards_after_it",
        ],
    ),
    22: (
        "publisher: queue file locked by another process -> messages wait in memory, in order; sent once the lock goes",
        [f"{RT}/test_mqtt.py::test_a_queue_file_locked_by_another_process_loses_nothing_and_the_feed_recovers"],
    ),
    23: (
        "publisher on a full disk: messages in memory, stored ones sent (removal retried), all drain once there "
        "is room",
        [f"{RT}/test_mqtt.py::test_a_full_disk_keeps_messages_in_memory_and_drains_once_there_is_room"],
    ),
    24: (
        "wrong MQTT password: said once with the broker's reason; detect and monitor exit non-zero; password "
        "from a file",
        [
            f"{RT}/test_mqtt.py::test_a_wrong_password_is_said_at_once_and_the_run_fails",
            f"{RT}/test_mqtt.py::test_detect_never_prints_the_password_and_exits_non_zero_when_the_broker_refuses_it",
        ],
    ),
    25: (
        "monitor on a dead broker: 'cannot connect' at once, 'never reached the broker' and a non-zero exit",
        [f"{RT}/test_mqtt.py::test_the_monitor_on_a_dead_broker_says_so_and_fails"],
    ),
    26: (
        "a queue file with a foreign schema: refused in one line at start",
        [f"{RT}/test_mqtt.py::test_a_foreign_queue_file_is_refused_clearly"],
    ),
    27: (
        "secrets: MQTT and camera passwords and the live view's token are masked in every line printed",
        [
            f"{RT}/test_mqtt.py::test_detect_never_prints_the_password_and_exits_non_zero_when_the_broker_refuses_it",
            f"{RT}/test_mqtt.py::test_stream_urls_are_printed_without_their_password",
        ],
    ),
    28: (
        "mqtts:// with a CA and a client certificate against a real Mosquitto; an unknown CA refused and said",
        [f"{RT}/test_mqtt.py::test_mqtts_with_a_ca_and_a_client_certificate_delivers_and_a_wrong_ca_is_refused"],
    ),
    29: (
        "live view: idle connections cut after a timeout, at most N at once (503 past it); viewers still answered",
        [f"{RT}/test_live_view.py::test_idle_connections_are_cut_and_bounded_and_real_viewers_still_get_answers"],
    ),
    30: (
        "live view: clients that hang up (resets mid-request, mid-stream) print no traceback",
        [f"{RT}/test_live_view.py::test_clients_that_hang_up_print_no_traceback"],
    ),
    31: (
        "live view on loopback: other Host names get 403 (DNS rebinding); a network bind answers any name",
        [f"{RT}/test_live_view.py::test_a_loopback_view_answers_only_to_loopback_host_names"],
    ),
    32: (
        "--serve ::1:PORT listens on IPv6 and answers",
        [f"{RT}/test_live_view.py::test_an_ipv6_loopback_view_listens_and_answers"],
    ),
    33: (
        "/frame.jpg asks the loop for a fresh frame and says its age (X-Frame-Age) when the loop stalls",
        [f"{RT}/test_live_view.py::test_frame_jpg_asks_for_a_fresh_frame_and_says_how_old_it_is"],
    ),
    34: (
        "a taken --name gets a fresh folder (qat2), two runs at once get two, a held run is refused (--exist-ok)",
        [
            f"{TR}/test_faults.py::test_a_taken_run_name_gets_a_fresh_folder_and_a_held_run_is_refused",
            f"{TR}/test_faults.py::test_two_runs_started_at_once_with_one_name_get_two_folders",
        ],
    ),
    35: (
        "--resume from a last.pt cut short by a kill: the intact published copy is restored, said, and resumed",
        [f"{TR}/test_faults.py::test_resume_from_a_last_pt_cut_short_falls_back_to_the_intact_copy"],
    ),
    36: (
        "qat --set ultralytics.mosaic=0.5 wins over qat.yaml; ultralytics.mosaic.x=1 and seed.x refused",
        [f"{TR}/test_faults.py::test_set_ultralytics_values_win_over_the_qat_config_and_nested_keys_are_refused"],
    ),
    37: (
        "a YAML alias bomb in a config or dataset YAML: refused in one short line",
        [f"{TR}/test_faults.py::test_a_yaml_alias_bomb_is_refused_in_one_line"],
    ),
    38: (
        "detect's --jsonl/--events/--save-video/--queue naming the source, the model or each other, evaluate's "
        "--json naming the model or the data: refused, nothing written",
        [
            f"{RT}/test_faults.py::test_an_output_that_names_an_input_or_another_output_is_refused",
            f"{TR}/test_faults.py::test_evaluate_refuses_a_json_path_that_names_the_model_or_the_data",
        ],
    ),
    39: (
        "--threads 100000: refused at once with the range this machine takes",
        [f"{RT}/test_faults.py::test_absurd_thread_counts_are_refused_at_once"],
    ),
    40: (
        "a model whose output has another class count than its metadata or sidecar: refused at load",
        [f"{RT}/test_faults.py::test_a_model_whose_metadata_names_other_classes_than_its_output_is_refused"],
    ),
    41: (
        "a NaN coordinate in a label: an error for check-data and for evaluate (not a sign nobody finds)",
        [f"{TR}/test_faults.py::test_a_nan_in_a_label_is_an_error_for_check_data_and_evaluate"],
    ),
    42: (
        "the MQTT restart test waits on the broker's acknowledgement, not on wall time (it failed once under load)",
        [
            f"{RT}/test_mqtt.py::test_detect_killed_and_restarted_sends_what_it_had_queued_and_the_monitor_counts_it_once"
        ],
    ),
    43: (
        "80 idle connections to the live view under a 64-descriptor limit: every frame processed, every "
        "video segment closed (they used to stop the run naming a wrong cause)",
        [f"{RT}/test_live_view.py::test_idle_connections_under_a_low_descriptor_limit_do_not_stop_the_run"],
    ),
}


def outcomes(junit: Path) -> dict[str, tuple[str, str]]:
    """test id (file::name) -> (passed | failed | skipped, reason)."""
    result = {}
    for case in ET.parse(junit).iter("testcase"):
        path = case.get("classname", "").replace(".", "/")
        key = f"{path}.py::{case.get('name', '').split('[')[0]}"
        status, reason = "passed", ""
        for child in case:
            if child.tag in ("failure", "error"):
                status, reason = "failed", (child.get("message") or "")[:100]
            elif child.tag == "skipped":
                status, reason = "skipped", (child.get("message") or "")[:100]
        previous = result.get(key)
        if previous is None or previous[0] == "passed":  # a parametrized test: the worst case counts
            result[key] = (status, reason)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-k", type=int, nargs="+", metavar="ITEM", help="only these items")
    args = parser.parse_args()
    items = {k: v for k, v in CATALOGUE.items() if not args.k or k in args.k}
    tests = sorted({t for _, ts in items.values() for t in ts})
    with tempfile.TemporaryDirectory() as folder:
        junit = Path(folder) / "faults.xml"
        if tests:
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "pytest",
                    "-q",
                    "-p",
                    "no:cacheprovider",
                    f"--junitxml={junit}",
                    "-o",
                    "junit_family=xunit1",
                    *tests,
                ],
                cwd=ROOT,
                check=False,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        seen = outcomes(junit) if junit.exists() else {}
    failed = 0
    for item, (what, item_tests) in items.items():
        if not item_tests:
            print(f"{item:>2}  note     {what}")
            continue
        found = [
            seen.get(t, ("missing", "not run"))
            if "::" in t
            else next(((s, r) for k, (s, r) in seen.items() if k.startswith(t)), ("missing", "not run"))
            for t in item_tests
        ]
        worst = next((o for o in found if o[0] in ("failed", "missing")), None) or next(
            (o for o in found if o[0] == "skipped"), ("passed", "")
        )
        failed += worst[0] in ("failed", "missing")
        detail = f"  [{worst[1]}]" if worst[1] else ""
        print(f"{item:>2}  {worst[0]:<8} {what} ({len(found)} test{'s' if len(found) > 1 else ''}){detail}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
