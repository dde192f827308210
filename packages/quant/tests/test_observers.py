"""Observers: ranges against torch references, empty-safety, state in buffers."""

from __future__ import annotations

import copy
import io

import pytest
import torch

from bienbao.quant import (
    OBSERVERS,
    HistogramObserver,
    MinMaxObserver,
    MovingAverageMinMaxObserver,
    ObserverNotReadyError,
    PerChannel,
    QuantScheme,
    reference_fake_quantize,
)

PER_TENSOR = QuantScheme(8, symmetric=False, signed=False)
PER_CHANNEL = QuantScheme(8, granularity=PerChannel(1))


def all_observers(scheme: QuantScheme):
    return [
        MinMaxObserver(scheme),
        MovingAverageMinMaxObserver(scheme, averaging_constant=0.1),
        HistogramObserver(scheme, method="percentile", bins=256),
        HistogramObserver(scheme, method="mse", bins=256, candidates=20),
    ]


def test_registry_holds_every_observer_family() -> None:
    assert set(OBSERVERS) == {"minmax", "moving_average", "histogram"}
    for name, cls in OBSERVERS.items():
        assert cls.name == name


def test_minmax_per_tensor_matches_aminmax() -> None:
    obs = MinMaxObserver(PER_TENSOR)
    xs = [torch.randn(4, 5) * (i + 1) for i in range(3)]
    for x in xs:
        obs(x)
    everything = torch.cat([x.flatten() for x in xs])
    assert obs.min_val.item() == everything.min().item()
    assert obs.max_val.item() == everything.max().item()
    scale, zp = obs.compute_qparams()
    ref_scale, ref_zp = PER_TENSOR.qparams(everything.min(), everything.max())
    assert scale.shape == () and torch.equal(scale, ref_scale) and torch.equal(zp, ref_zp)


def test_minmax_per_channel_on_axis_one() -> None:
    obs = MinMaxObserver(PER_CHANNEL)
    x = torch.randn(2, 6, 3, 3)
    obs(x)
    ref_min = x.transpose(0, 1).reshape(6, -1).min(dim=1).values
    ref_max = x.transpose(0, 1).reshape(6, -1).max(dim=1).values
    assert torch.equal(obs.min_val, ref_min) and torch.equal(obs.max_val, ref_max)
    scale, _ = obs.compute_qparams()
    assert scale.shape == (6,)


def test_moving_average_follows_its_formula() -> None:
    c = 0.25
    obs = MovingAverageMinMaxObserver(PER_TENSOR, averaging_constant=c, warm_start=False)
    a, b = torch.tensor([-1.0, 2.0]), torch.tensor([-3.0, 6.0])
    obs(a)
    obs(b)
    assert obs.min_val.item() == pytest.approx(-1.0 + c * (-3.0 - -1.0), abs=0)
    assert obs.max_val.item() == pytest.approx(2.0 + c * (6.0 - 2.0), abs=0)


def test_moving_average_weights_its_first_batches_alike_then_decays() -> None:
    c = 0.25  # horizon: 4 batches
    obs = MovingAverageMinMaxObserver(PER_TENSOR, averaging_constant=c, warm_start=True)
    maxima = [2.0, 6.0, 1.0, 3.0, 10.0, 0.0]
    for m in maxima[:4]:
        obs(torch.tensor([-m, m]))
    assert obs.max_val.item() == pytest.approx(sum(maxima[:4]) / 4)  # the plain mean of 4 batches
    assert obs.min_val.item() == pytest.approx(-sum(maxima[:4]) / 4)
    expected = sum(maxima[:4]) / 4
    for m in maxima[4:]:  # past the horizon: the exponential average at c
        obs(torch.tensor([-m, m]))
        expected += c * (m - expected)
    assert obs.max_val.item() == pytest.approx(expected)
    assert int(obs.observations) == len(maxima)
    obs.reset()
    assert int(obs.observations) == 0 and not obs.has_data


def test_a_moving_average_saved_before_the_warm_start_keeps_moving_as_it_did(tmp_path) -> None:
    c = 0.25
    obs = MovingAverageMinMaxObserver(PER_TENSOR, averaging_constant=c, warm_start=True)
    obs(torch.tensor([-1.0, 2.0]))
    old = {k: v for k, v in obs.state_dict().items() if k != "observations"}  # a pre-0.6 state dict
    loaded = MovingAverageMinMaxObserver(PER_TENSOR, averaging_constant=c, warm_start=True)
    loaded.load_state_dict(old)  # strict: the missing count is filled, not an error
    loaded(torch.tensor([-3.0, 6.0]))
    assert loaded.max_val.item() == pytest.approx(2.0 + c * (6.0 - 2.0))  # not the 1/2 of a second batch
    pickled = MovingAverageMinMaxObserver(PER_TENSOR, averaging_constant=c, warm_start=True)
    pickled(torch.tensor([-1.0, 2.0]))
    del pickled._buffers["observations"], pickled.warm_start  # what unpickling a pre-0.6 checkpoint's observer gives
    path = tmp_path / "old.pt"
    torch.save(pickled, path)
    revived = torch.load(path, weights_only=False)
    revived(torch.tensor([-3.0, 6.0]))
    assert revived.max_val.item() == pytest.approx(2.0 + c * (6.0 - 2.0))
    assert revived.warm_start is False and int(revived.observations) == 5  # 4 = 1 / c, then one more


def test_histogram_percentile_is_within_one_bin_of_the_exact_quantile() -> None:
    bins = 1024
    obs = HistogramObserver(PER_TENSOR, method="percentile", bins=bins, percentile=99.0)
    x = torch.randn(200_000)
    obs(x[:100_000])
    obs(x[100_000:] * 1.5)  # widens the range: the histogram is re-binned
    data = torch.cat([x[:100_000], x[100_000:] * 1.5])
    lo, hi = obs._range()
    bin_width = (data.max() - data.min()).item() / bins
    # re-binning moves old counts by up to one old bin; allow two bins in all
    assert abs(hi.item() - torch.quantile(data, 0.99).item()) <= 2 * bin_width
    assert abs(lo.item() - torch.quantile(data, 0.01).item()) <= 2 * bin_width
    assert obs.histogram.sum().item() == data.numel()


def test_histogram_mse_clips_outliers_and_beats_minmax_on_heavy_tails() -> None:
    scheme = QuantScheme(8, symmetric=True, signed=True)
    x = torch.randn(100_000)
    x[:10] = 80.0  # a few outliers stretch the min-max range 20x
    mse, minmax = HistogramObserver(scheme, method="mse"), MinMaxObserver(scheme)
    mse(x)
    minmax(x)

    def error(observer) -> float:
        scale, zp = observer.compute_qparams()
        return (reference_fake_quantize(x, scale, zp, -128, 127) - x).pow(2).mean().item()

    assert mse.compute_qparams()[0] < minmax.compute_qparams()[0]
    assert error(mse) < error(minmax)


def test_histogram_per_channel_keeps_channels_apart() -> None:
    obs = HistogramObserver(QuantScheme(8, granularity=PerChannel(0)), method="percentile", percentile=100.0)
    x = torch.stack([torch.linspace(-1, 1, 1000), torch.linspace(-5, 5, 1000)])
    obs(x)
    lo, hi = obs._range()
    assert torch.allclose(hi, torch.tensor([1.0, 5.0]))
    assert torch.allclose(lo, torch.tensor([-1.0, -5.0]))


@pytest.mark.parametrize("observer", all_observers(PER_TENSOR) + all_observers(PER_CHANNEL), ids=repr)
def test_empty_tensors_are_ignored_and_qparams_need_data(observer) -> None:
    observer(torch.empty(0, 6, 3))
    assert not observer.has_data
    with pytest.raises(ObserverNotReadyError, match="seen no data"):
        observer.compute_qparams()


@pytest.mark.parametrize("observer", all_observers(PER_TENSOR) + all_observers(PER_CHANNEL), ids=repr)
def test_state_survives_deepcopy_state_dict_and_reset(observer) -> None:
    x = torch.randn(4, 6, 5, 5, requires_grad=True)
    out = observer(x)
    assert out is x  # observers pass the tensor through untouched
    assert all(not b.requires_grad for b in observer.buffers())
    expected = observer.compute_qparams()

    clone = copy.deepcopy(observer)
    assert all(torch.equal(a, b) for a, b in zip(clone.compute_qparams(), expected, strict=False))

    buffer = io.BytesIO()
    torch.save(observer.state_dict(), buffer)
    buffer.seek(0)
    fresh = type(observer)(observer.scheme, **_options(observer))
    fresh.load_state_dict(torch.load(buffer))
    assert all(torch.equal(a, b) for a, b in zip(fresh.compute_qparams(), expected, strict=False))

    observer.reset()
    assert not observer.has_data


def _options(observer) -> dict:
    if isinstance(observer, HistogramObserver):
        return {
            "method": observer.method,
            "bins": observer.bins,
            "percentile": observer.percentile,
            "candidates": observer.candidates,
        }
    if isinstance(observer, MovingAverageMinMaxObserver):
        return {"averaging_constant": observer.averaging_constant}
    return {}


def test_a_changed_channel_count_is_an_error() -> None:
    obs = MinMaxObserver(PER_CHANNEL)
    obs(torch.randn(1, 4, 2))
    with pytest.raises(ValueError, match="channels"):
        obs(torch.randn(1, 5, 2))


def test_bad_options_are_named() -> None:
    with pytest.raises(ValueError, match="averaging_constant"):
        MovingAverageMinMaxObserver(PER_TENSOR, averaging_constant=0.0)
    with pytest.raises(ValueError, match="percentile, mse"):
        HistogramObserver(PER_TENSOR, method="entropy")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="percentile"):
        HistogramObserver(PER_TENSOR, percentile=20.0)
