"""The benchmark protocol (SwinIR's) and the benchmark script on two-image temporary sets."""
import hashlib
import json
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch
import yaml
from basicsr.archs.swinir_arch import SwinIR
from basicsr.utils.color_util import bgr2ycbcr
from skimage.metrics import peak_signal_noise_ratio

from vheatir.allocator import REUSE_MMAP_THRESHOLD
from vheatir.api import estimate_noise_sigma
from vheatir.benchmark import make_pair, network_restorer, run_set, to_uint8, y_channel_uint8
from vheatir.data.samples import write_sample_images
from vheatir.weights import export_weights, read_manifest, update_manifest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture
def scripts_importable(monkeypatch):
    """Make ``scripts/`` importable for one test; sys.path is restored afterwards."""
    monkeypatch.syspath_prepend(os.path.join(ROOT, 'scripts'))


@pytest.fixture
def two_images(tmp_path):
    write_sample_images(str(tmp_path / 'gray'), gray=True, size=64, count=2)
    write_sample_images(str(tmp_path / 'color'), gray=False, size=64, count=2)
    return tmp_path


def test_denoise_inputs_follow_swinir_seeding(two_images):
    path = str(two_images / 'gray' / 'astronaut.png')
    gt, lq = make_pair(path, 'denoise', False, 25)
    np.random.seed(0)
    expected = cv2.imread(path, 0)[..., None] / 255.0 + np.random.normal(0, 25 / 255.0, gt.shape)
    np.testing.assert_allclose(lq, expected, atol=1e-6)
    assert (expected < 0).any() or (expected > 1).any()  # so the match above shows lq is not clipped


def test_colour_noise_is_drawn_in_bgr_then_flipped(two_images):
    path = str(two_images / 'color' / 'astronaut.png')
    gt, lq = make_pair(path, 'denoise', True, 15)
    np.random.seed(0)
    bgr = cv2.imread(path, cv2.IMREAD_COLOR) / 255.0 + np.random.normal(0, 15 / 255.0, gt.shape)
    np.testing.assert_allclose(lq, bgr[..., ::-1], atol=1e-6)
    np.testing.assert_array_equal(gt, cv2.imread(path)[..., ::-1])


class CondEcho(torch.nn.Module):
    """Returns its conditioning value as the image: shows what sigma a restorer passed."""
    cond_chans = 1

    def forward(self, x, cond):
        return cond.reshape(-1, 1, 1, 1).expand_as(x)


def test_sigma_auto_gives_each_image_its_estimated_sigma(two_images):
    net = CondEcho()
    for path in sorted((two_images / 'gray').iterdir()):
        _, lq = make_pair(str(path), 'denoise', False, 25)
        fixed = network_restorer(net, 'denoise', 25, torch.device('cpu'))(lq)
        auto = network_restorer(net, 'denoise', None, torch.device('cpu'))(lq)
        assert np.allclose(fixed, 25 / 255)
        assert np.allclose(auto, estimate_noise_sigma(lq) / 255) and abs(auto.flat[0] * 255 - 25) > 1e-3
    with pytest.raises(ValueError, match='denoising'):
        network_restorer(net, 'jpeg', None, torch.device('cpu'))


def test_y_channel_matches_basicsr():
    bgr = np.random.default_rng(0).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    ref = (bgr2ycbcr(bgr.astype(np.float32) / 255.0, y_only=True) * 255.0).round()
    assert np.abs(y_channel_uint8(bgr).astype(float) - ref).max() <= 1  # float32 vs float64 rounding ties


def test_run_set_scores_input_and_identity(two_images):
    res = run_set(None, str(two_images / 'gray'), 'denoise', False, 25)
    assert len(res['images']) == 2
    gt, lq = make_pair(str(two_images / 'gray' / 'astronaut.png'), 'denoise', False, 25)
    ref = peak_signal_noise_ratio(gt, to_uint8(lq), data_range=255)
    assert res['images'][0]['name'] == 'astronaut.png'
    assert res['images'][0]['psnr'] == pytest.approx(ref, abs=1e-6)
    assert res['mean']['psnr'] == pytest.approx(np.mean([r['psnr'] for r in res['images']]))

    jpeg = run_set(None, str(two_images / 'color'), 'jpeg', False, 10)  # colour files -> Y channel
    assert jpeg['mean']['psnrb'] < jpeg['mean']['psnr']  # q10 JPEG is blocky
    perfect = run_set(lambda lq: lq, str(two_images / 'gray'), 'jpeg', False, 90)
    assert perfect['mean']['psnr'] > jpeg['mean']['psnr']


def _script(*args, cwd):
    proc = subprocess.run([sys.executable, os.path.join(ROOT, 'scripts', 'benchmark.py'), *args],
                          cwd=cwd, capture_output=True, text=True, timeout=600)
    return proc.returncode, proc.stdout, proc.stderr


@pytest.fixture
def odd_gray_set(tmp_path):
    """Two 60x60 gray images: not a multiple of SwinIR's window of 8, so padding is exercised."""
    write_sample_images(str(tmp_path / 'sets' / 'odd'), gray=True, size=60, count=2)
    return tmp_path


def _swinir_checkpoint(tmp_path):
    """A small untrained BasicSR SwinIR, as a BasicSR checkpoint plus the option file it fits."""
    with open(os.path.join(ROOT, 'options', 'train', 'SwinIR', 'train_SwinIR_S_denoise_gray.yml')) as f:
        opt = yaml.safe_load(f)
    opt['network_g'].update(depths=[1], embed_dim=16, num_heads=[2])
    option = tmp_path / 'swinir.yml'
    option.write_text(yaml.safe_dump(opt))
    net_opt = {k: v for k, v in opt['network_g'].items() if k != 'type'}
    torch.manual_seed(0)
    torch.save({'params': SwinIR(**net_opt).state_dict()}, tmp_path / 'net_g_7.pth')
    return str(tmp_path / 'net_g_7.pth'), str(option)


def test_benchmark_script_end_to_end(odd_gray_set, scripts_importable):
    wd = odd_gray_set
    common = ['--task', 'denoise', '--root', 'sets', '--sets', 'odd', '--sigmas', '25']

    code, out, err = _script(*common, '--model', 'input', '--out', 'input.json', cwd=wd)
    assert code == 0, err
    assert '| odd | 25 |' in out
    baseline = json.load(open(wd / 'input.json'))
    assert [r['name'] for r in baseline['results'][0]['images']] == ['astronaut.png', 'camera.png']

    code, out, err = _script(*common, '--model', 'bm3d', '--out', 'bm3d.json', cwd=wd)
    assert code == 0, err
    bm3d = json.load(open(wd / 'bm3d.json'))
    assert bm3d['results'][0]['mean']['psnr'] > baseline['results'][0]['mean']['psnr'] + 3

    checkpoint, option = _swinir_checkpoint(wd)
    code, out, err = _script(*common, '--model', 'swinir', '--checkpoint', checkpoint, '--option', option,
                             '--out', 'swinir.json', cwd=wd)
    assert code == 0, err
    swinir = json.load(open(wd / 'swinir.json'))
    assert swinir['arch'] == 'SwinIR' and len(swinir['weights_sha256']) == 64
    code, _, err = _script(*common, '--model', 'swinir', '--checkpoint', checkpoint, '--option', option,
                           '--sigma-auto', '--out', 'swinir_auto.json', cwd=wd)
    assert code == 2 and 'no noise-level input' in err and 'Traceback' not in err   # it would change nothing
    assert not (wd / 'swinir_auto.json').exists()
    assert swinir['parameters'] > 0 and swinir['results'][0]['seconds_per_image'] > 0

    # The same network as shipped weights in a manifest: --record stores the means in its entry.
    manifest = str(wd / 'manifest.json')
    update_manifest(export_weights(checkpoint, option, str(wd / 'swinir_w.pth'), 'denoise', 'gray'), manifest)
    code, out, err = _script(*common, '--model', 'swinir', '--manifest', manifest, '--record',
                             '--out', 'swinir_w.json', cwd=wd)
    assert code == 0, err
    recorded = read_manifest(manifest)[0]['benchmark']['odd sigma25']
    assert recorded['psnr'] == pytest.approx(swinir['results'][0]['mean']['psnr'], abs=0.01)
    code, _, err = _script(*common, '--model', 'swinir', '--manifest', manifest, '--record', '--self-ensemble', cwd=wd)
    assert code == 2 and 'without it' in err   # the manifest holds plain scores only
    code, out, err = _script(*common, '--model', 'swinir', '--manifest', manifest, '--self-ensemble',
                             '--out', 'swinir_plus.json', cwd=wd)
    assert code == 0, err
    plus = json.load(open(wd / 'swinir_plus.json'))
    assert plus['self_ensemble'] is True and swinir['self_ensemble'] is False
    assert plus['results'][0]['mean']['psnr'] != swinir['results'][0]['mean']['psnr']

    # The quality/speed picture from these JSONs: one point per model, the input as a line.
    import plot_quality_speed
    from plot_quality_speed import points
    jsons = [str(wd / f) for f in ('input.json', 'bm3d.json', 'swinir.json')]
    drawn = points(jsons, 'odd', 25)
    assert [r['model'] for r in drawn][:2] == ['input', 'BM3D (ours)']
    assert drawn[2]['model'].startswith('SwinIR-S (') and drawn[2]['model'].endswith(' net_g_7)')  # a checkpoint
    assert drawn[1]['psnr'] == bm3d['results'][0]['mean']['psnr']
    assert plot_quality_speed.main(['--set', 'odd', '--level', '25', '--results', *jsons,
                                    '--out', str(wd / 'qs.png')]) == 0
    assert (wd / 'qs.png').stat().st_size > 0
    assert plot_quality_speed.main(['--set', 'odd', '--level', '50', '--results', *jsons]) == 2


def test_benchmark_script_errors_are_one_line(odd_gray_set):
    wd = odd_gray_set
    code, _, err = _script('--task', 'jpeg', '--root', 'sets', '--sets', 'odd', '--model', 'bm3d', cwd=wd)
    assert code == 2 and 'bm3d is a denoiser' in err
    code, _, err = _script('--task', 'denoise', '--root', 'sets', '--sets', 'missing', '--model', 'input', cwd=wd)
    assert code == 2 and err.strip().splitlines()[-1].startswith('error: ') and 'Traceback' not in err
    code, _, err = _script('--task', 'denoise', '--root', 'sets', '--sets', 'odd', '--model', 'swinir',
                           '--checkpoint', 'nope.pth', '--option', 'nope.yml', cwd=wd)
    assert code == 2 and 'Traceback' not in err and 'nope' in err


def test_benchmark_resume_reuses_levels_a_killed_run_finished(odd_gray_set):
    wd = odd_gray_set
    common = ['--task', 'denoise', '--root', 'sets', '--sets', 'odd', '--model', 'input']
    code, _, err = _script(*common, '--sigmas', '25', '--out', 'one.json', cwd=wd)
    assert code == 0, err
    assert not (wd / 'one.json.partial').exists()   # a finished run leaves only the whole file
    one = json.load(open(wd / 'one.json'))

    # A run killed after sigma 25 of 25,50 leaves what it finished under .partial.
    info = {k: v for k, v in one.items() if k not in ('command', 'results')}
    (wd / 'two.json.partial').write_text(json.dumps({'info': info, 'results': one['results']}))
    code, _, err = _script(*common, '--sigmas', '25,50', '--out', 'two.json', '--resume', cwd=wd)
    assert code == 0, err
    assert 'odd 25: reused' in err and 'odd 50: reused' not in err
    two = json.load(open(wd / 'two.json'))
    assert [r['level'] for r in two['results']] == [25, 50]
    assert two['results'][0] == one['results'][0]     # reused as is, wall time included
    assert two['results'][1]['mean']['psnr'] < one['results'][0]['mean']['psnr'] - 3
    assert not (wd / 'two.json.partial').exists()

    # A partial from other settings is refused, not mixed in.
    (wd / 'three.json.partial').write_text(json.dumps({'info': {**info, 'color': True}, 'results': []}))
    code, _, err = _script(*common, '--sigmas', '25', '--out', 'three.json', '--resume', cwd=wd)
    assert code == 2 and 'other settings (color)' in err and 'Traceback' not in err
    assert (wd / 'three.json.partial').exists() and not (wd / 'three.json').exists()


def test_results_tables_from_json_and_stale_files_left_out(tmp_path, scripts_importable):
    from vheatir.docblocks import replace_blocks
    from results_tables import head_to_head, markdown_table, measured, model_label, pair_summary
    (tmp_path / 'w.pth').write_bytes(b'current weights')
    sha = hashlib.sha256(b'current weights').hexdigest()

    def result(model, psnr, **extra):
        path = tmp_path / f'{model}_{psnr}.json'
        mean = {'psnr': psnr, 'ssim': 0.5}
        path.write_text(json.dumps({'model': model, 'task': 'denoise', 'color': False, **extra, 'results': [
            {'set': 'BSD68', 'level': 25.0, 'mean': mean, 'seconds_per_image': 1.0}]}))
        return str(path)

    files = [result('input', 20.5), result('bm3d', 28.6),
             result('vheatir', 28.9, arch='VHeatIR', weights='w.pth', weights_sha256=sha),
             result('vheatir', 99.0, arch='VHeatIR', weights='w.pth', weights_sha256='0' * 64),  # stale
             result('vheatir', 29.1, arch='VHeatIR', weights='w.pth', weights_sha256=sha, weights_level=25),
             result('swinir', 28.7, arch='SwinIR', weights='w.pth', weights_sha256=sha, parameters=348745,
                    gflops_256=23.45, weights_meta={'label': 'SwinIR-S (equal time)', 'iterations': 1950,
                                                    'wall_time_s': 7000.4})]
    scores, models, stale = measured(files, root=str(tmp_path))
    assert stale == [files[3]]
    gray = scores['denoise_gray']
    assert sorted(gray) == ['BM3D (ours)', 'SwinIR-S (equal time)', 'input', 'vHeatIR-S', 'vHeatIR-S (σ25 only)']
    assert model_label({'model': 'vheatir', 'task': 'jpeg', 'arch': 'VHeatIR', 'self_ensemble': True}) == \
        'vHeatIR-S ×8 self-ensemble'   # its own column, never mixed with the plain model's
    # an estimated sigma or bf16 never stands in for the protocol's true-sigma float32 run
    assert model_label({'model': 'vheatir', 'task': 'denoise', 'arch': 'VHeatIR', 'sigma': 'auto'}) == \
        'vHeatIR-S (σ estimated)'
    assert model_label({'model': 'vheatir', 'task': 'denoise', 'arch': 'VHeatIR', 'amp': 'bf16'}) == 'vHeatIR-S (bf16)'
    assert model_label({'model': 'input', 'task': 'denoise', 'sigma': 'auto'}) == 'input'
    assert model_label({'model': 'vheatir', 'task': 'denoise', 'arch': 'VHeatIR', 'input': '8-bit'}) == \
        'vHeatIR-S (8-bit input)'      # likewise a run on 8-bit inputs (benchmark.py --eight-bit)
    assert model_label({'model': 'input', 'task': 'denoise', 'input': '8-bit'}) == 'input (8-bit)'
    # a training checkpoint is never mistaken for the shipped model
    assert model_label({'model': 'vheatir', 'task': 'denoise', 'arch': 'VHeatIR', 'input': '8-bit',
                        'checkpoint': 'experiments/run_r2/models/net_g_22000.pth'}) == \
        'vHeatIR-S (run_r2 net_g_22000) (8-bit input)'
    table = markdown_table('denoise_gray', gray, {'denoise_gray': {'SwinIR': {'BSD68': {'25': 29.5}}}})
    row = next(line for line in table.splitlines() if line.startswith('| BSD68, 25 '))
    assert row == ('| BSD68, 25 | 20.50 / 0.5000 | 28.60 / 0.5000 | 28.70 / 0.5000 | 28.90 / 0.5000 '
                   '| 29.10 / 0.5000 | 29.50 |')
    assert '| BSD68, 15 | — | — | — | — | — | 31.97' not in table and '| BSD68, 15 | — | — | — | — | — | — |' in table

    # Head-to-head: best PSNR first, the input left out, facts a JSON lacks shown as missing.
    lines = head_to_head(gray, models['denoise_gray']).splitlines()
    assert [line.split(' | ')[0] for line in lines[2:]] == [
        '| vHeatIR-S (σ25 only)', '| vHeatIR-S', '| SwinIR-S (equal time)', '| BM3D (ours)']
    assert lines[4] == '| SwinIR-S (equal time) | 348,745 | 23.4 | 1,950 | 7,000 | 28.70 / 0.5000 | 1.00 |'
    assert lines[5] == '| BM3D (ours) | — | — | — | — | 28.60 / 0.5000 | 1.00 |'

    # Same-budget pairs: margins over the cells both models have; a pair with none is left out.
    both = {'denoise_gray': {'ours': {('BSD68', 25): {'psnr': 29.0}, ('Set12', 15): {'psnr': 31.0},
                                      ('BSD68', 15): {'psnr': 30.0}},
                             'theirs': {('BSD68', 25): {'psnr': 28.5}, ('Set12', 15): {'psnr': 31.2}}}}
    rows = pair_summary(both, [('ours', 'theirs', 'equal iterations'), ('ours', 'absent', 'x')]).splitlines()[2:]
    assert rows == ['| denoise gray | equal iterations | ours | theirs | 2 | 30.00 / 29.85 '
                    '| +0.15 (-0.20 … +0.50) | 1 of 2 |']

    readme = 'intro\n<!-- results:denoise_gray -->\nold table\n<!-- /results:denoise_gray -->\nend\n'
    once, done = replace_blocks(readme, 'results', {'denoise_gray': table})
    assert done == ['denoise_gray'] and 'old table' not in once and once.endswith('-->\nend\n')
    assert replace_blocks(once, 'results', {'denoise_gray': table})[0] == once   # idempotent
    assert replace_blocks('no markers', 'results', {'denoise_gray': table}) == ('no markers', [])


def test_results_tables_write_compact_readme_and_full_docs_tables(tmp_path, capsys, scripts_importable):
    import results_tables

    def result(name, model, psnr, label=None, **extra):
        meta = {'weights_meta': {'label': label}} if label else {}
        (tmp_path / f'{name}.json').write_text(json.dumps({
            'model': model, 'task': 'denoise', 'color': False, 'arch': 'VHeatIR', **meta, **extra,
            'results': [{'set': 'BSD68', 'level': 25.0, 'mean': {'psnr': psnr, 'ssim': 0.8},
                         'seconds_per_image': 2.0},
                        {'set': 'Set12', 'level': 15.0, 'mean': {'psnr': psnr + 2, 'ssim': 0.9}}]}))
        return str(tmp_path / f'{name}.json')

    files = [result('input', 'input', 20.5), result('bm3d', 'bm3d', 28.6), result('shipped', 'vheatir', 28.9),
             result('shipped_8bit', 'vheatir', 28.85, input='8-bit'),
             result('twin', 'vheatir', 28.8, 'vHeatIR-S (5k it)'),
             result('swin', 'swinir', 28.3, 'SwinIR-S (5k it)', arch='SwinIR'),
             result('swin_time', 'swinir', 28.1, 'SwinIR-S (equal time)', arch='SwinIR')]
    published = tmp_path / 'published.json'
    published.write_text(json.dumps({'denoise_gray': {'DnCNN': {'BSD68': {'25': 29.23}},
                                                      'SwinIR': {'BSD68': {'25': 29.5}, 'Set12': {'15': 33.36}}}}))
    full = ['denoise_gray', 'denoise_color', 'jpeg_gray', 'jpeg_color', 'headtohead', 'pairs']
    compact = [f'{family}_compact' for family in results_tables.FAMILIES]

    def marked(names):
        return 'top\n' + ''.join(f'<!-- results:{n} -->\nold\n<!-- /results:{n} -->\n' for n in names) + 'end\n'

    readme, docs = tmp_path / 'README.md', tmp_path / 'benchmarks.md'
    readme.write_text(marked(compact))
    docs.write_text(marked(full))
    args = ['--results', *files, '--published', str(published), '--readme', str(readme), '--docs', str(docs),
            '--manifest', str(tmp_path / 'no_manifest.json')]   # no manifest: vHeatIR-S is shipped
    assert results_tables.main(args) == 0
    out = capsys.readouterr().out
    assert f'rewrote {", ".join(full)} in {docs}' in out and f'rewrote {", ".join(compact)} in {readme}' in out
    r, d = readme.read_text(), docs.read_text()
    assert 'old' not in r and 'old' not in d and r.endswith('end\n') and d.endswith('end\n')

    # README: PSNR only, a row per method (shipped on float and 8-bit inputs, the equal-iteration pair, BM3D,
    # published), a column per cell.
    block = r.split('<!-- results:denoise_gray_compact -->\n')[1].split('\n<!-- /results')[0].splitlines()
    assert block[0] == ('| PSNR dB | BSD68 σ15 | BSD68 σ25 | BSD68 σ50 | Set12 σ15 | Set12 σ25 | Set12 σ50 |')
    assert block[2:] == [
        '| vHeatIR-S (shipped) | — | 28.90 | — | 30.90 | — | — |',
        '| vHeatIR-S (shipped), 8-bit input | — | 28.85 | — | 30.85 | — | — |',
        '| vHeatIR-S (5k it) | — | 28.80 | — | 30.80 | — | — |',
        '| SwinIR-S (5k it) | — | 28.30 | — | 30.30 | — | — |',
        '| BM3D (ours) | — | 28.60 | — | 30.60 | — | — |',
        '| DnCNN (published) | — | 29.23 | — | — | — | — |',
        '| SwinIR (published) | — | 29.50 | — | 33.36 | — | — |']
    assert '0.8000' not in r and 'SwinIR-S (equal time)' not in r and '| input' not in r
    # Families with nothing measured still get their (published-only or empty) table.
    assert r.count('| PSNR dB |') == 4

    # Docs: the full tables (SSIM, every model, head-to-head, pairs), none of the compact ones.
    assert '| BSD68, 25 | 20.50 / 0.8000 | 28.60 / 0.8000 |' in d and 'SwinIR-S (equal time)' in d
    assert '| vHeatIR-S | — | — | — | — | 28.90 / 0.8000 | 2.00 |' in d
    assert '| denoise gray | equal CPU time | vHeatIR-S (5k it) | SwinIR-S (equal time) | 2 |' in d
    assert '| PSNR dB |' not in d
    assert results_tables.main(args) == 0 and readme.read_text() == r and docs.read_text() == d   # idempotent

    # A missing block is an error naming it, and then neither file is written.
    readme.write_text(marked(compact[:-1]))
    docs.write_text(marked(full))
    assert results_tables.main(args) == 2
    assert 'no block jpeg_color_compact to fill' in capsys.readouterr().err
    assert readme.read_text() == marked(compact[:-1]) and docs.read_text() == marked(full)


def test_results_tables_guardrail_compares_the_estimated_sigma_with_the_true_one(tmp_path, scripts_importable):
    """docs/real_noise.md's guardrail comes from the shipped gray model's true-sigma and
    --sigma-auto runs; a sigma measured only at the true value shows a dash for the estimate."""
    import results_tables

    def result(name, levels, **extra):
        (tmp_path / f'{name}.json').write_text(json.dumps({
            'model': 'vheatir', 'task': 'denoise', 'color': False, 'arch': 'VHeatIR', **extra,
            'results': [{'set': 'BSD68', 'level': float(s), 'mean': {'psnr': p, 'ssim': 0.8}}
                        for s, p in levels.items()]}))
        return str(tmp_path / f'{name}.json')

    files = [result('true', {15: 31.534, 25: 29.059, 50: 26.096}),
             result('auto', {15: 31.522, 25: 29.041}, sigma='auto'),
             result('ours_bf16', {25: 28.0}, amp='bf16')]   # another column, never the guardrail's
    page = tmp_path / 'real_noise.md'
    page.write_text('intro\n<!-- results:guardrail -->\nold\n<!-- /results:guardrail -->\nend\n')
    assert results_tables.main(['--results', *files, '--real-noise', str(page), '--manifest', str(tmp_path / 'none')]) == 0
    block = page.read_text().split('<!-- results:guardrail -->\n')[1].split('\n<!-- /results')[0].splitlines()
    assert block == ['| BSD68 | σ15 | σ25 | σ50 |', '|---|---|---|---|',
                     '| true σ | 31.53 | 29.06 | 26.10 |',
                     '| `--sigma auto` | 31.52 (−0.01) | 29.04 (−0.02) | — |']
    assert page.read_text().startswith('intro\n') and page.read_text().endswith('end\n')
    # 8-bit inputs, where measured, get their own pair of rows, compared with each other.
    files += [result('true8', {15: 31.52, 50: 26.04}, input='8-bit'),
              result('auto8', {15: 31.50, 50: 26.061}, input='8-bit', sigma='auto')]
    assert results_tables.main(['--results', *files, '--real-noise', str(page), '--manifest', str(tmp_path / 'none')]) == 0
    block = page.read_text().split('<!-- results:guardrail -->\n')[1].split('\n<!-- /results')[0].splitlines()
    assert block[4:] == ['| 8-bit input, true σ | 31.52 | — | 26.04 |',
                         '| 8-bit input, `--sigma auto` | 31.50 (−0.02) | — | 26.06 (+0.02) |']


def test_results_tables_floors_show_margins_and_which_hold(tmp_path, scripts_importable):
    """docs/status.md's floors block: the shipped models' unrounded PSNR against FLOORS, the 8-bit gap
    as a difference of two runs, a floor met only at two decimals said so, unmeasured ones a dash."""
    import results_tables

    def result(name, task, color, levels, **extra):
        (tmp_path / f'{name}.json').write_text(json.dumps({
            'model': 'vheatir', 'task': task, 'color': color, 'arch': 'VHeatIR', **extra,
            'results': [{'set': s, 'level': float(l), 'mean': {'psnr': p, 'ssim': 0.8}}
                        for (s, l), p in levels.items()]}))
        return str(tmp_path / f'{name}.json')

    files = [result('gray', 'denoise', False, {('Set12', 50): 26.847, ('BSD68', 15): 31.0}),
             result('gray8', 'denoise', False, {('Set12', 50): 26.5}, input='8-bit'),
             result('color', 'denoise', True, {('CBSD68', 25): 31.16}),
             result('jpeg', 'jpeg', False, {('LIVE1', 10): 29.1449})]
    page = tmp_path / 'status.md'
    page.write_text('<!-- results:floors -->\n<!-- /results:floors -->\n')
    assert results_tables.main(['--results', *files, '--status', str(page), '--manifest', str(tmp_path / 'none')]) == 0
    rows = {tuple(c.strip() for c in line.strip('|').split('|')[:2]): line
            for line in page.read_text().splitlines()[3:-1]}
    assert len(rows) == len(results_tables.FLOORS)
    assert rows[('gray denoiser', 'Set12 σ50 ≥ 26.85')].endswith('| 26.847 | −0.003 | ✓ at two decimals |')
    assert rows[('gray denoiser', 'BSD68 σ15 ≥ 31.40')].endswith('| 31.000 | −0.400 | ✗ |')
    assert rows[('gray denoiser', 'Set12 σ50, 8-bit minus float input ≥ −0.25')].endswith('| −0.347 | −0.097 | ✗ |')
    assert rows[('colour denoiser', 'CBSD68 σ25 ≥ 31.15')].endswith('| 31.160 | +0.010 | ✓ |')
    assert rows[('gray JPEG', 'LIVE1 q10 ≥ 29.25')].endswith('| 29.145 | −0.105 | ✗ |')
    assert rows[('colour JPEG', 'LIVE1 q10 ≥ 27.20')].endswith('| — | — |  |')


def test_results_tables_follow_the_manifest_to_a_deeper_shipped_model(tmp_path, scripts_importable):
    """When the manifest ships a vHeatIR-M for one task, that task's README row, floors and
    high-quality rows come from the M column (named from its option file), and the S model
    measured before it is not shown as shipped; the other tasks keep vHeatIR-S."""
    import results_tables
    from vheatir.weights import default_entry
    manifest = tmp_path / 'manifest.json'
    manifest.write_text(json.dumps([
        {'task': 'jpeg', 'color': 'gray', 'file': 'vheatir_M_jpeg_gray.pth',
         'option': 'options/train/train_vHeatIR_M_jpeg_gray.yml'},
        {'task': 'jpeg', 'color': 'gray', 'file': 'vheatir_S_jpeg_gray_5k1k.pth', 'label': 'vHeatIR-S (5k+1k it)',
         'option': 'options/train/train_vHeatIR_S_jpeg_gray.yml'},
        {'task': 'denoise', 'color': 'gray', 'file': 'vheatir_S_denoise_gray.pth',
         'option': 'options/train/train_vHeatIR_S_denoise_gray.yml'}]))
    assert default_entry('jpeg', 'gray', str(manifest))['file'] == 'vheatir_M_jpeg_gray.pth'
    assert [results_tables.shipped_label(f, str(manifest)) for f in results_tables.FAMILIES] == \
        ['vHeatIR-S', 'vHeatIR-S', 'vHeatIR-M', 'vHeatIR-S']   # colour: none listed

    def result(name, option, psnr, checkpoint=None):
        meta = {'checkpoint': checkpoint, 'option': option} if checkpoint else {'weights_meta': {'option': option}}
        (tmp_path / f'{name}.json').write_text(json.dumps({
            'model': 'vheatir', 'task': 'jpeg', 'color': False, 'arch': 'VHeatIR', **meta,
            'results': [{'set': 'LIVE1', 'level': 10.0, 'mean': {'psnr': psnr, 'ssim': 0.8}}]}))
        return str(tmp_path / f'{name}.json')

    files = [result('s', 'options/train/train_vHeatIR_S_jpeg_gray.yml', 29.196),
             result('m', 'options/train/train_vHeatIR_M_jpeg_gray.yml', 29.262),
             result('probe', 'options/train/train_vHeatIR_M_jpeg_gray.yml', 29.3,
                    checkpoint='experiments/run_m/models/net_g_1000.pth')]
    scores, _, _ = results_tables.measured(files)
    assert sorted(scores['jpeg_gray']) == ['vHeatIR-M', 'vHeatIR-M (run_m net_g_1000)', 'vHeatIR-S']
    readme, status = tmp_path / 'README.md', tmp_path / 'status.md'
    readme.write_text(''.join(f'<!-- results:{f}_compact -->\n<!-- /results:{f}_compact -->\n'
                              for f in results_tables.FAMILIES))
    status.write_text('<!-- results:floors -->\n<!-- /results:floors -->\n')
    assert results_tables.main(['--results', *files, '--readme', str(readme), '--status', str(status),
                                '--manifest', str(manifest)]) == 0
    rows = [line for line in readme.read_text().splitlines() if '(shipped)' in line]
    assert rows == ['| vHeatIR-M (shipped) | 29.26 | — | — | — | — | — | — | — |']
    floor = next(line for line in status.read_text().splitlines() if 'LIVE1 q10 ≥ 29.25' in line)
    assert floor.endswith('| 29.262 | +0.012 | ✓ |')


def test_results_tables_high_quality_jpeg_table_shows_input_model_and_gain(tmp_path, scripts_importable):
    """docs/usage.md's jpeg_high_quality block: per set the JPEG input, the shipped model and the gain
    at every quality either was measured at; a quality measured for one model only leaves the
    other's cells empty."""
    import results_tables
    folder = tmp_path / 'hq'
    folder.mkdir()

    def result(name, task, color, model, levels):
        (folder / f'{name}.json').write_text(json.dumps({
            'model': model, 'task': task, 'color': color, 'arch': 'VHeatIR',
            'results': [{'set': s, 'level': float(l), 'mean': {'psnr': p, 'ssim': 0.9}}
                        for (s, l), p in levels.items()]}))

    result('gray_input', 'jpeg', False, 'input', {('Classic5', 96): 44.801, ('Classic5', 100): 58.454})
    result('gray_model', 'jpeg', False, 'vheatir', {('Classic5', 96): 44.744, ('Classic5', 100): 51.976})
    result('color_input', 'jpeg', True, 'input', {('LIVE1', 97): 40.85})
    page = tmp_path / 'usage.md'
    page.write_text('a\n<!-- results:jpeg_high_quality -->\nold\n<!-- /results:jpeg_high_quality -->\nb\n')
    assert results_tables.main(['--results', '--usage', str(page), '--high-quality', str(folder),
                               '--manifest', str(tmp_path / 'none')]) == 0
    block = page.read_text().split('-->\n')[1].split('\n<!--')[0].splitlines()
    assert block == ['| PSNR dB | q96 | q97 | q100 |', '|---|---|---|---|',
                     '| Classic5, JPEG input | 44.80 |  | 58.45 |',
                     '| Classic5, gray model | 44.74 |  | 51.98 |',
                     '| gain | −0.06 |  | −6.47 |',
                     '| LIVE1 colour, JPEG input |  | 40.85 |  |',
                     '| LIVE1 colour, colour model |  |  |  |',
                     '| gain |  |  |  |']


def test_step_rates_from_training_logs(tmp_path, capsys, scripts_importable):
    import step_rates

    def log(name, seconds_per_100):
        t = 0
        lines = ['2026-11-24 10:00:00,000 INFO: Start training from epoch: 0, iter: 0']
        for i, dt in enumerate(seconds_per_100, start=1):
            t += dt
            lines.append(f'2026-11-24 10:{t // 60:02d}:{t % 60:02d},123 INFO: [train..][epoch:  0, '
                         f'iter: {i * 100:>7,}, lr:(1e-04,)] [eta: 0:01:00] l_pix: 1e-02')
        (tmp_path / name).write_text('\n'.join(lines) + '\n')
        return str(tmp_path / name)

    fast = log('fast.log', [100, 100, 100, 300])     # a validation pause: the median ignores it
    slow = log('slow.log', [200, 200, 200])
    assert step_rates.interval_rates(fast) == [1.0, 1.0, 3.0]  # the start line is not a print point
    assert step_rates.main([f'A={fast}', f'B={slow}', '--budget', 'A:500']) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[2] == '| A | 3 | 1.00 | 500 |' and out[3] == '| B | 2 | 2.00 | 250 |'
    assert step_rates.main([f'A={tmp_path / "none.log"}']) == 2

    # A resumed run's log appended to the first: the hour between the two parts is no interval.
    resumed = tmp_path / 'resumed.log'
    resumed.write_text(open(slow).read() + '\n'.join([
        '2026-11-24 11:00:00,000 INFO: Start training from epoch: 0, iter: 300',
        '2026-11-24 11:03:20,000 INFO: [train..][epoch:  0, iter:     400, lr:(1e-04,)] l_pix: 1e-02',
        '2026-11-24 11:06:40,000 INFO: [train..][epoch:  0, iter:     500, lr:(1e-04,)] l_pix: 1e-02']) + '\n')
    assert step_rates.interval_rates(str(resumed)) == [2.0, 2.0, 2.0]


def test_bench_speed_reads_peaks_with_a_low_mmap_threshold_and_times_with_a_high_one(monkeypatch, scripts_importable):
    import bench_speed

    calls = []
    real = bench_speed.set_mmap_threshold
    monkeypatch.setattr(bench_speed, 'set_mmap_threshold', lambda t: (calls.append(t), real(t)))
    grown = bench_speed.peak_growth(lambda: torch.ones(2 ** 24).sum())   # a 64 MiB tensor, alive briefly
    assert grown >= 60 * 2 ** 20
    assert calls == [bench_speed.PEAK_MMAP_THRESHOLD, bench_speed.TIMING_MMAP_THRESHOLD]
    assert bench_speed.TIMING_MMAP_THRESHOLD == REUSE_MMAP_THRESHOLD   # timed as inference.py runs


def test_bench_speed_alternate_repeats_short_calls_until_min_total(monkeypatch, scripts_importable):
    import bench_speed

    clock, counts = [0.0], [0, 0]
    monkeypatch.setattr(bench_speed.time, 'perf_counter', lambda: clock[0])

    def call(i, seconds):   # advances a fake clock: no real timing in the test
        def f():
            counts[i] += 1
            clock[0] += seconds
        return f
    medians = bench_speed.alternate([call(0, 0.002), call(1, 0.004)], repeats=3, min_total=0.1)
    assert counts == [26, 26]   # one warm-up, then 0.1 s / 4 ms (the slower warm-up) = 25 timed runs
    assert medians == pytest.approx([0.002, 0.004])
    counts[:] = [0, 0]
    bench_speed.alternate([call(0, 0.002), call(1, 0.004)], repeats=3)
    assert counts == [4, 4]     # without min_total: the warm-up and ``repeats`` runs


def test_bench_speed_run_child_reports_the_childs_own_peak_memory_not_ours(scripts_importable):
    import bench_speed

    ours = np.ones(400 * 2 ** 20 // 8)   # this process now holds 400 MB more than its child will
    allocate = 'import numpy, os; a = numpy.ones(int(os.environ["MB"]) * 2 ** 17); print("x")'
    small = bench_speed.run_child([sys.executable, '-c', allocate], 1, {'MB': '1'})[1]
    large = bench_speed.run_child([sys.executable, '-c', allocate], 1, {'MB': '600'})[1]
    assert small < 200 * 2 ** 20 and large >= 600 * 2 ** 20, (small, large)
    assert ours.sum() > 0
    with pytest.raises(RuntimeError, match='boom'):
        bench_speed.run_child([sys.executable, '-c', 'import sys; sys.exit("boom")'], 1)


def test_bench_speed_user_runs_variants_in_turn_and_a_baseline_checkout(monkeypatch, tmp_path, scripts_importable):
    import bench_speed

    with pytest.raises(SystemExit, match='--user-baseline'):
        bench_speed.section_user(['baseline'], ['0.5 MP'], 1, str(tmp_path))   # no inference.py there
    (tmp_path / 'inference.py').write_text('')
    order = []
    monkeypatch.setattr(bench_speed, 'USER_CASES', [('tiny', [(8, 8)], 0)])
    monkeypatch.setattr(bench_speed, 'photo', lambda h, w, seed=0, sigma=15: np.full((h, w, 3), sigma, np.uint8))
    envs, inputs = [], []

    def run_child(cmd, threads, extra_env=None):
        order.append(cmd[1])
        envs.append(extra_env)
        folder = cmd[cmd.index('--input') + 1]
        first = sorted(os.listdir(folder))[0]
        inputs.append((cmd[cmd.index('--task') + 1], first, int(cv2.imread(os.path.join(folder, first)).mean().round())))
        return len(order), 2 ** 20

    monkeypatch.setattr(bench_speed, 'run_child', run_child)
    rows = bench_speed.section_user(['baseline', 'torch-bf16', 'glibc', 'jpeg'], ['tiny'], 2, str(tmp_path))
    ours = os.path.join(ROOT, 'inference.py')
    assert order == [str(tmp_path / 'inference.py'), ours, ours, ours] * 2   # alternating, repeat by repeat
    assert envs == [None, None, {'VHEATIR_ALLOCATOR': 'system'}, None] * 2   # 'glibc' opts out of jemalloc
    # 'jpeg' restores JPEG files of the clean photo (sigma 0); the others denoise the noisy PNGs (sigma 15).
    assert [i[:2] for i in inputs] == ([('denoise', '0.png')] * 3 + [('jpeg', '0.jpg')]) * 2
    assert all(mean == 15 if task == 'denoise' else mean <= 2 for task, _, mean in inputs)
    assert [(r['variant'], r['seconds']) for r in rows] == [('baseline', 1), ('torch-bf16', 2), ('glibc', 3), ('jpeg', 4)]


def test_bench_speed_merge_keeps_unrun_user_rows_with_the_command_that_measured_them(scripts_importable):
    import bench_speed
    first = {'command': 'python bench_speed.py --user-variants a,b', 'date': '2026-01-01 10:00'}
    old = bench_speed.merge_results({}, {'user': [{'case': '0.5 MP', 'variant': 'a', 'seconds': 5.0},
                                                  {'case': '0.5 MP', 'variant': 'b', 'seconds': 9.0}],
                                         'peers': [{'model': 'x'}]}, first)
    second = {'command': 'python bench_speed.py --user-variants b', 'date': '2026-01-02 11:00'}
    before = json.loads(json.dumps(old))
    new = bench_speed.merge_results(old, {'user': [{'case': '0.5 MP', 'variant': 'b', 'seconds': 7.0}]}, second)
    rows = {r['variant']: r for r in new['user']}
    assert rows['a']['seconds'] == 5.0 and rows['a']['command'] == first['command']
    assert rows['b']['seconds'] == 7.0 and rows['b']['date'] == second['date']
    assert len(new['user']) == 2
    assert new['peers'] == [{'model': 'x'}] and new['env_by_section']['peers'] == first
    assert new['env_by_section']['user'] == second
    assert old == before   # the earlier JSON is not modified in place


def test_bench_speed_writes_the_user_tables_into_readme_and_docs(tmp_path, monkeypatch, capsys, scripts_importable):
    import bench_speed

    def row(case, variant, seconds, peak_mb, mp=0.48):
        return {'case': case, 'variant': variant, 'megapixels': mp, 'seconds': seconds,
                's_per_mp': seconds / mp, 'peak_mb': peak_mb}

    rows = [row('0.5 MP', 'torch-bf16', 5.0, 2000), row('0.5 MP', 'baseline', 10.0, 3000),
            row('four 0.5 MP (a folder)', 'torch-bf16', 12.0, 2500, 1.92),
            row('four 0.5 MP (a folder)', 'baseline', 20.0, 3500, 1.92),
            row('four 0.5 MP (a folder)', 'onnxruntime', 30.0, 4000, 1.92),
            row('four 0.5 MP (a folder)', 'glibc', 14.4, 3000, 1.92),
            row('four 0.5 MP (a folder)', 'jpeg', 24.0, 2600, 1.92),
            row('12 MP, one thread', 'torch-bf16', 300.0, 5000, 12.0),
            row('0.5 MP', 'CBM3D', 30.0, 1600)]
    blocks = bench_speed.user_blocks(rows)
    full, compact = blocks['user'].splitlines(), blocks['user_compact'].splitlines()
    assert full[2] == '| one 0.5 MP photo (800×600) | 10.4 s/MP, 2000 MB | 20.8 s/MP, 3000 MB | 0.50 |  |  |  |  |  |'
    # the folder is 0.60 of before: the goal of one half is missed; glibc, ONNX and JPEG columns filled where measured
    assert full[3] == ('| a folder of four 0.5 MP photos | **6.2 s/MP**, 2500 MB | 10.4 s/MP, 3500 MB | **0.60** '
                       '| ≤ ½ ✗ | 7.5 s/MP, 3000 MB |  | 15.6 s/MP, 4000 MB | 12.5 s/MP, 2600 MB |')
    # 12 MP against the reference: 300 / 559 s is above one half, and 5000 MB is above 4 GB
    assert full[4].startswith('| one 12 MP photo (4000×3000), one thread | **300 s**, 5000 MB | 559 s, 7.3 GB')
    assert '| **0.54** | ≤ ½, ≤ 4 GB ✗ |' in full[4]
    assert full[-1].startswith('CBM3D (PyPI `bm3d`) on the 0.5 MP photo: 30.0 s')
    # README: the default's time and peak, and the other engines' and dtypes' s/MP where measured
    assert compact[0] == ('| input | default (bf16) | `--amp fp32` | `--engine onnxruntime` | `--task jpeg` (vHeatIR-M) '
                          '| peak memory (default) |')
    assert compact[2] == '| one 0.5 MP photo (800×600) | 5.0 s (10.4 s/MP) |  |  |  | 2.0 GB |'
    assert compact[3] == '| a folder of four 0.5 MP photos | 12.0 s (6.2 s/MP) |  | 15.6 s/MP | 12.5 s/MP | 2.4 GB |'
    assert compact[4] == '| one 12 MP photo (4000×3000), one thread | 300 s (25.0 s/MP) |  |  |  | 4.9 GB |'
    assert len(compact) == 6 and compact[-1] == '| CBM3D, one 0.5 MP photo | 30.0 s (62 s/MP) |  |  |  | 1.6 GB |'

    # The command line: only the blocks, from the JSON, into both files; a file without its block is an error.
    out = tmp_path / 'speed.json'
    out.write_text(json.dumps({'user': rows}))
    readme, docs = tmp_path / 'README.md', tmp_path / 'speed.md'
    readme.write_text('a\n<!-- speed:user_compact -->\nold\n<!-- /speed:user_compact -->\nb\n')
    docs.write_text('<!-- speed:user -->\n<!-- /speed:user -->\n')
    argv = ['bench_speed.py', '--sections', '', '--out', str(out), '--readme', str(readme), '--docs', str(docs)]
    monkeypatch.setattr(sys, 'argv', argv)
    assert bench_speed.main() == 0
    assert readme.read_text() == 'a\n<!-- speed:user_compact -->\n' + blocks['user_compact'] + \
        '\n<!-- /speed:user_compact -->\nb\n'
    assert docs.read_text() == '<!-- speed:user -->\n' + blocks['user'] + '\n<!-- /speed:user -->\n'
    docs.write_text('no block here\n')
    readme.write_text('<!-- speed:user_compact -->\n<!-- /speed:user_compact -->\n')
    assert bench_speed.main() == 2
    assert 'no block user to fill' in capsys.readouterr().err
    assert readme.read_text() == '<!-- speed:user_compact -->\n<!-- /speed:user_compact -->\n'   # none written


def test_bench_speed_peers_table_takes_the_psnr_of_the_weights_shipped_now(tmp_path, monkeypatch, scripts_importable):
    """The peers timings stay; their PSNR column follows docs/results (here a stand-in) whenever the
    JSON is written, and the docs table is generated from it."""
    import bench_speed

    def row(model, engine, s_per_mp, params, psnr, source):
        return {'model': model, 'engine': engine, 'params': params, 's_per_mp': s_per_mp, 'psnr': psnr,
                'psnr_source': source}

    stale = [row('vHeatIR-S', 'torch fp32', 14.73, 388945, 28.92, 'measured'),
             row('vHeatIR-S', 'torch bf16', 11.91, 388945, 28.92, 'measured'),
             row('vHeatIR-S', 'onnxruntime', 21.08, 388945, 28.92, 'measured'),
             row('SwinIR', 'torch fp32', 234.7, 11497681, 29.5, 'published'),
             row('DnCNN', 'torch fp32', 4.61, 556097, 29.23, 'published'),
             row('BM3D', 'PyPI bm3d', 22.52, '-', 28.63, 'measured')]
    now = {'vHeatIR-S': (29.05, 'measured'), 'SwinIR': (29.5, 'published'), 'DnCNN': (29.23, 'published'),
           'BM3D': (28.63, 'measured')}
    monkeypatch.setattr(bench_speed, 'peer_psnr', lambda: now)
    out, docs = tmp_path / 'speed.json', tmp_path / 'speed.md'
    out.write_text(json.dumps({'peers': stale}))
    docs.write_text('<!-- speed:user -->\n<!-- /speed:user -->\n<!-- speed:peers -->\n<!-- /speed:peers -->\n')
    monkeypatch.setattr(sys, 'argv', ['bench_speed.py', '--sections', '', '--out', str(out), '--docs', str(docs)])
    assert bench_speed.main() == 0
    rows = json.loads(out.read_text())['peers']
    assert [r['psnr'] for r in rows if r['model'] == 'vHeatIR-S'] == [29.05] * 3
    assert [r['s_per_mp'] for r in rows] == [r['s_per_mp'] for r in stale]
    table = docs.read_text().split('<!-- speed:peers -->\n')[1].splitlines()
    assert table[2] == '| vHeatIR-S (shipped) | 389k | 14.7 | 11.9 | 29.05 (measured) |'
    assert table[3] == '| vHeatIR-S, ONNX Runtime | 389k | 21.1 |  | 29.05 (measured) |'
    assert table[4] == '| BM3D (PyPI) |  | 22.5 |  | 28.63 (measured) |'
    # the peers by PSNR: DnCNN before SwinIR, whatever the JSON's order
    assert table[5] == '| DnCNN | 556k | 4.6 |  | 29.23 (published) |'
    assert table[6] == '| SwinIR | 11.5M | 235 |  | 29.50 (published) |'


def test_bench_speed_peers_table_names_the_shipped_size(scripts_importable):
    """A deeper shipped gray denoiser is named by its size in the peers table (its rows are
    ours: first, with the ONNX row after them), not as vHeatIR-S."""
    import bench_speed
    rows = [{'model': 'DnCNN', 'engine': 'torch fp32', 'params': 556097, 's_per_mp': 3.1, 'psnr': 29.23,
             'psnr_source': 'published'},
            {'model': 'vHeatIR-M', 'engine': 'torch fp32', 'params': 623377, 's_per_mp': 12.5, 'psnr': 29.1,
             'psnr_source': 'measured'},
            {'model': 'vHeatIR-M', 'engine': 'onnxruntime', 'params': 623377, 's_per_mp': 20.0, 'psnr': 29.1,
             'psnr_source': 'measured'}]
    table = bench_speed.peers_block(rows).splitlines()
    assert table[2] == '| vHeatIR-M (shipped) | 623k | 12.5 |  | 29.10 (measured) |'
    assert table[3] == '| vHeatIR-M, ONNX Runtime | 623k | 20 |  | 29.10 (measured) |'
    assert table[4].startswith('| DnCNN |') and 'vHeatIR-S' not in '\n'.join(table)


def noisy_clean_pairs(root, sigma: float, seed: int):
    """A two-pair stand-in for CC15 under ``root``: 48 x 48 colour ``clean/X.png`` and 8-bit
    ``noisy/X.png`` with Gaussian noise of ``sigma``; returns the clean paths."""
    clean = write_sample_images(str(root / 'clean'), gray=False, size=48, count=2)
    rng = np.random.default_rng(seed)
    os.makedirs(root / 'noisy')
    for path in clean:
        img = cv2.imread(path).astype(np.float32)
        noisy = np.clip(np.rint(img + rng.normal(0, sigma, img.shape)), 0, 255).astype(np.uint8)
        cv2.imwrite(path.replace(os.sep + 'clean' + os.sep, os.sep + 'noisy' + os.sep), noisy)
    return clean


def test_real_noise_run_then_table_into_readme_and_docs(tmp_path):
    """scripts/real_noise.py on a two-pair stand-in for CC15: the JSON per image, then the CC15 table
    written into both files, and again by ``table`` from the JSON alone."""
    clean = noisy_clean_pairs(tmp_path / 'cc', sigma=12, seed=0)
    block = '<!-- real_noise:CC15 -->\nold\n<!-- /real_noise:CC15 -->\n'
    for name in ('README.md', 'real_noise.md'):
        (tmp_path / name).write_text('top\n' + block)
    script = [sys.executable, os.path.join(ROOT, 'scripts', 'real_noise.py')]
    files = ['--out', str(tmp_path / 'cc.json'), '--readme', str(tmp_path / 'README.md'),
             '--docs', str(tmp_path / 'real_noise.md')]
    proc = subprocess.run([*script, 'run', '--root', str(tmp_path / 'cc'), '--sigmas', '8,16', *files],
                          capture_output=True, text=True, timeout=600, env=dict(os.environ, OMP_NUM_THREADS='2'))
    assert proc.returncode == 0, proc.stderr
    payload = json.load(open(tmp_path / 'cc.json'))
    rows = payload['images']
    assert sorted(rows) == sorted(os.path.basename(p) for p in clean) and payload['sigmas'] == [8.0, 16.0]
    assert all(r['auto'] > r['input'] + 1 for r in rows.values())   # the shipped model denoises them
    written = (tmp_path / 'README.md').read_text()
    assert written == (tmp_path / 'real_noise.md').read_text() and 'old' not in written
    base = np.mean([r['input'] for r in rows.values()])
    auto = np.mean([r['auto'] for r in rows.values()])
    assert f'| vHeatIR-S, default command (σ auto) | {auto:.2f} | {auto - base:+.2f} |' in written
    assert 'CBM3D' not in written   # not measured in this run

    (tmp_path / 'README.md').write_text('top\n' + block)
    proc = subprocess.run([*script, 'table', *files], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / 'README.md').read_text() == written
    proc = subprocess.run([*script, 'table', '--out', str(tmp_path / 'none.json')], capture_output=True, text=True)
    assert proc.returncode == 2 and 'none.json' in proc.stderr and 'Traceback' not in proc.stderr


def test_real_noise_gray_runs_the_gray_model_and_bm3d_on_luma(tmp_path):
    """``run --gray``: each pair turned into luma, the shipped gray model and gray BM3D restore it,
    and the table, which says BM3D, not CBM3D, goes to the CC15_gray block only."""
    clean = noisy_clean_pairs(tmp_path / 'cc', sigma=15, seed=1)
    page = tmp_path / 'real_noise.md'
    page.write_text('<!-- real_noise:CC15 -->\ncolour\n<!-- /real_noise:CC15 -->\n'
                    '<!-- real_noise:CC15_gray -->\nold\n<!-- /real_noise:CC15_gray -->\n')
    proc = subprocess.run([sys.executable, os.path.join(ROOT, 'scripts', 'real_noise.py'), 'run', '--gray', '--bm3d',
                           '--root', str(tmp_path / 'cc'), '--sigmas', '10', '--out', str(tmp_path / 'g.json'),
                           '--docs', str(page)],
                          capture_output=True, text=True, timeout=600, env=dict(os.environ, OMP_NUM_THREADS='2'))
    assert proc.returncode == 0, proc.stderr
    payload = json.load(open(tmp_path / 'g.json'))
    assert payload['gray'] is True
    for name, row in payload['images'].items():
        noisy = cv2.imread(str(tmp_path / 'cc' / 'noisy' / name))
        luma = cv2.cvtColor(cv2.imread(str(tmp_path / 'cc' / 'clean' / name)), cv2.COLOR_BGR2GRAY)
        mse = np.mean((cv2.cvtColor(noisy, cv2.COLOR_BGR2GRAY).astype(np.float64) - luma) ** 2)
        assert abs(row['input'] - 10 * np.log10(255 ** 2 / mse)) < 1e-6   # PSNR of the luma pair
        assert row['weights'].endswith('vheatir_M_denoise_gray.pth')
        assert row['auto'] > row['input'] + 1 and row['bm3d_auto'] > row['input'] + 1
    assert '| BM3D at the estimated σ |' in proc.stdout and 'CBM3D' not in proc.stdout
    assert all(row['model'] == 'vHeatIR-M' for row in payload['images'].values())   # named by its size
    assert '| vHeatIR-M, default command (σ auto) |' in proc.stdout
    written = page.read_text()   # the gray block rewritten, the colour one left alone
    assert 'as gray' in written and 'old' not in written and '\ncolour\n' in written


def test_bench_speed_peer_psnr_without_a_recorded_result_is_a_one_line_error(monkeypatch, scripts_importable):
    """Between an export and its benchmark docs/results holds no shipped-weights result: the
    peers' PSNR lookup stops with a message saying what to run, not a KeyError."""
    import bench_speed
    import results_tables

    monkeypatch.setattr(results_tables, 'measured', lambda files, root: ({}, {}, []))
    with pytest.raises(SystemExit) as err:
        bench_speed.peer_psnr()
    message = str(err.value)
    assert message.startswith('error:') and '\n' not in message
    assert results_tables.shipped_label('denoise_gray') in message and '--record' in message
