"""The peer denoisers written from their papers, and the quality/speed picture drawn from bench_speed rows."""
import json
import os

import pytest
import torch

from vheatir.archs.peers_arch import DnCNN, DRUNet, FFDNet

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _params(net):
    return sum(p.numel() for p in net.parameters())


@pytest.mark.parametrize('net, paper', [(DnCNN(), 556e3), (FFDNet(), 486e3), (FFDNet(3, 96, 12), 852e3),
                                        (DRUNet(), 32.64e6)])
def test_parameter_counts_match_the_papers(net, paper):
    assert abs(_params(net) - paper) / paper < 0.005


@pytest.mark.parametrize('make', [DnCNN, FFDNet, DRUNet])
@pytest.mark.parametrize('chans', [1, 3])
def test_any_size_in_same_size_out(make, chans):
    net = make(chans).eval()
    x = torch.rand(2, chans, 29, 43)
    with torch.no_grad():
        y = net(x, torch.full((2, 1), 0.1)) if net.cond_chans else net(x)
    assert y.shape == x.shape and torch.isfinite(y).all()


@pytest.mark.parametrize('make', [FFDNet, DRUNet])
def test_noise_level_is_an_input(make):
    net = make().eval()
    x = torch.rand(1, 1, 24, 24)
    with torch.no_grad():
        low, high = net(x, torch.full((1, 1), 0.05)), net(x, torch.full((1, 1), 0.2))
    assert not torch.allclose(low, high)
    with pytest.raises(ValueError, match='noise level'):
        net(x)


def test_dncnn_predicts_the_noise():
    net = DnCNN().eval()
    torch.nn.init.zeros_(net.body[-1].weight)
    torch.nn.init.zeros_(net.body[-1].bias)
    x = torch.rand(1, 1, 16, 16)
    with torch.no_grad():
        assert torch.equal(net(x), x)  # a zero noise estimate leaves the image as it is


def test_published_scores_of_the_peers_are_recorded():
    with open(os.path.join(ROOT, 'docs', 'published.json')) as f:
        gray = json.load(f)['denoise_gray']
    for name in ('DnCNN', 'FFDNet', 'DRUNet', 'SwinIR'):
        assert set(gray[name]['BSD68']) == {'15', '25', '50'}
    assert gray['FFDNet']['BSD68']['25'] < gray['DRUNet']['BSD68']['25'] < gray['SwinIR']['BSD68']['25']


def test_quality_speed_picture_from_peers_rows(tmp_path, monkeypatch, capsys):
    monkeypatch.syspath_prepend(os.path.join(ROOT, 'scripts'))
    import plot_quality_speed
    rows = [dict(model='vHeatIR-S', engine='torch fp32', s_per_mp=12.0, psnr=28.9, psnr_source='measured'),
            dict(model='vHeatIR-S', engine='torch bf16', s_per_mp=9.0, psnr=28.9, psnr_source='measured'),
            dict(model='DnCNN', engine='torch fp32', s_per_mp=4.0, psnr=29.23, psnr_source='published')]
    (tmp_path / 'speed.json').write_text(json.dumps({'peers': rows, 'env_by_section': {'peers': {'threads': 2}}}))
    drawn = plot_quality_speed.speed_points(str(tmp_path / 'speed.json'))
    assert [(r['model'], r['seconds'], r['published']) for r in drawn] == \
        [('vHeatIR-S', 12.0, False), ('vHeatIR-S', 9.0, False), ('DnCNN', 4.0, True)]
    out = tmp_path / 'qs.png'
    assert plot_quality_speed.main(['--speed', str(tmp_path / 'speed.json'), '--out', str(out)]) == 0
    assert out.stat().st_size > 0 and '| DnCNN (torch fp32) | 29.23 | 4.00 |' in capsys.readouterr().out
    (tmp_path / 'empty.json').write_text('{}')
    assert plot_quality_speed.main(['--speed', str(tmp_path / 'empty.json'), '--out', str(out)]) == 2
