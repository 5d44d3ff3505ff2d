import json

import torch
from typer.testing import CliRunner

from eqr_solve import bench
from eqr_solve.cli import app
from tests.test_cli import models  # noqa: F401  (fixture)


def test_timed_reports_min_and_median():
    calls = []
    best, med = bench.timed(lambda: calls.append(1), repeats=3, warmup=2)
    assert len(calls) == 5 and 0 <= best <= med


def test_quick_bench_writes_json(models, tmp_path):  # noqa: F811
    r = CliRunner().invoke(app, ["bench", "--quick", "--batches", "1,2", "--repeats", "1",
                                 "--no-compile", "--dtype", "fp32", "--json",
                                 "--out", str(tmp_path / "b.json")])
    assert r.exit_code == 0, r.output
    report = json.loads((tmp_path / "b.json").read_text())
    assert json.loads(r.stdout) == report  # --json: the same report, one line on stdout
    peak = report["peak"]
    assert peak["gflops_max"] == max(peak["by_backend"].values()) > 0
    assert peak["backend"] in peak["by_backend"] and "torch.mm" in peak["by_backend"]
    eager = [x["batch"] for x in report["inference"] if x["mode"] == "eager"]
    assert eager == [1, 2] and {x["dtype"] for x in report["inference"]} == {"float32"}
    assert all(x["segments_per_s_max"] > 0 for x in report["inference"])
    assert all(x["gemm_gflops"] > 0 and x["pct_gemm"] > 0 and x["pct_peak_paired"] > 0
               for x in report["inference"])


def test_model_gemm_uses_the_inference_chunk():
    from eqr_solve.model import EqR

    model = EqR(bench.PAPER_SUDOKU)
    assert model.rows_per_chunk(81) == 16  # so batch 256 is timed as 16-row GEMMs
    assert bench.model_gemm(model, 256, (9, 9), repeats=1) > 0


def test_bench_parts_selects_what_is_measured(tmp_path):
    r = CliRunner().invoke(app, ["bench", "--quick", "--parts", "solving", "--repeats", "1",
                                 "--out", str(tmp_path / "b.json")])
    assert r.exit_code == 0, r.output
    report = json.loads((tmp_path / "b.json").read_text())
    assert report["inference"] == [] and report["training"] == []
    assert report["machine"]["cpu"]
    bad = CliRunner().invoke(app, ["bench", "--parts", "speed"])
    assert bad.exit_code == 2 and "speed" in bad.stderr and len(bad.stderr.splitlines()) == 1
    r = CliRunner().invoke(app, ["bench", "--quick", "--out", str(tmp_path)])
    assert r.exit_code == 2 and "not a regular file" in r.stderr


def test_paired_alternates_and_ratios_each_run_to_its_own_peak():
    calls = []
    fn_s, peak_s = bench.paired(lambda: calls.append(1), repeats=3, peak_n=32, warmup=1)
    assert len(calls) == 4 and len(fn_s) == len(peak_s) == 3
    n = 64
    flops = 2 * n**3
    # a run as fast as the matmul beside it is 100%; the slow third peak run (a busy machine)
    # does not drag the ratio down, because its model run was equally slow
    assert bench.paired_pct(flops, [1.0, 2.0, 4.0], [1.0, 2.0, 4.0], n) == 100
    assert bench.paired_pct(flops / 2, [1.0, 1.0, 1.0], [1.0, 1.0, 1.0], n) == 50


def test_every_matmul_backend_computes_the_same_product():
    a, b = torch.randn(8, 16), torch.randn(16, 16)
    for name, mm in bench.matmul_backends().items():
        expected = a @ b.t() if name == "oneDNN" else a @ b
        assert torch.allclose(mm(a, b), expected, atol=1e-5), name


def test_alternating_runs_each_fn_once_per_repeat_in_turn():
    order = []
    runs = bench.alternating({"a": lambda: order.append("a"), "b": lambda: order.append("b")},
                             repeats=2, peak_n=32, warmup=1)
    assert order == ["a", "a", "b", "b"] * 2  # a warm-up run, then the timed one
    assert all(len(fn_s) == len(peak_s) == 2 for fn_s, peak_s in runs.values())
