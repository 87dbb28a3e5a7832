"""The knobs of the ablation study: heat modes, the heat learning rate, pooled and cached data,
8-bit inputs in training and in the benchmark, how far k moved, and option files as plain data."""
import json
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch
import yaml

from vheatir.archs.heat_ops import Diffusivity
from vheatir.archs.vheatir_arch import VHeatIR
from vheatir.benchmark import make_pair
from vheatir.compat import OptionFileError, load_option_file
from vheatir.api import estimate_noise_sigma, flat_noise_sigma, white_noise_sigma
from vheatir.data.degradations import camera_noise, quantize_8bit
from vheatir.data.restoration_dataset import DenoisingDataset, camera_sigma_reading
from vheatir.heat_analysis import moved_from_init
from vheatir.models.vheatir_model import VHeatIRModel

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = dict(embed_dim=8, depths=[2], mlp_ratio=2, cond_chans=1, fve_grid=4)


def test_heat_modes_keep_or_drop_the_heat_parameters():
    torch.manual_seed(0)
    learned, frozen, none = (VHeatIR(in_chans=1, heat_mode=m, **TINY) for m in ('learned', 'frozen', 'none'))
    heat = lambda net: {n for n, _ in net.named_parameters() if '.fve.' in n or '.diffusivity.' in n}  # noqa: E731
    assert heat(learned) and all(p.requires_grad for p in learned.parameters())
    assert heat(frozen) == heat(learned)
    assert not any(p.requires_grad for n, p in frozen.named_parameters() if n in heat(frozen))
    assert not heat(none) and not any('fve' in n for n, _ in none.state_dict().items())

    x, cond = torch.rand(2, 1, 20, 24), torch.full((2, 1), 0.1)
    none(x, cond).sum().backward()
    frozen(x, cond).sum().backward()
    assert all(p.grad is None for n, p in frozen.named_parameters() if n in heat(frozen))
    assert frozen.conv_first.weight.grad is not None
    with pytest.raises(ValueError, match='heat_mode'):
        VHeatIR(in_chans=1, heat_mode='off', **TINY)


def test_none_mode_is_the_block_without_heat_conduction():
    # With k = 0 the DCT-decay-IDCT is the identity, so a learned net whose k is forced to 0 must equal
    # the 'none' net holding the same remaining weights.
    torch.manual_seed(0)
    learned = VHeatIR(in_chans=1, **TINY).eval()
    for group in learned.groups:
        for block in group.blocks:
            block.hco.diffusivity.forward = lambda fve, h, w, c=8: torch.zeros(h, w, c)
    none = VHeatIR(in_chans=1, heat_mode='none', **TINY).eval()
    none.load_state_dict({k: v for k, v in learned.state_dict().items() if k in none.state_dict()}, strict=True)
    x, cond = torch.rand(1, 1, 17, 23), torch.full((1, 1), 0.2)
    with torch.no_grad():
        torch.testing.assert_close(learned(x, cond), none(x, cond), atol=1e-5, rtol=1e-5)


def test_moved_from_init_reports_the_relative_change_of_k():
    torch.manual_seed(0)
    net = VHeatIR(in_chans=1, **TINY)
    assert moved_from_init(net)['median_rel_change'] < 0.01
    with torch.no_grad():
        for group in net.groups:
            for block in group.blocks:
                block.hco.diffusivity.proj.bias.copy_(torch.log(2 * Diffusivity.initial_k(8)))
    net_log = VHeatIR(in_chans=1, k_param='log', **TINY)
    with torch.no_grad():
        for group in net_log.groups:
            for block in group.blocks:
                block.hco.diffusivity.proj.bias.copy_(torch.log(2 * Diffusivity.initial_k(8)))
    assert moved_from_init(net_log)['median_rel_change'] == pytest.approx(1.0, abs=0.02)   # k doubled
    assert moved_from_init(VHeatIR(in_chans=1, heat_mode='none', **TINY)) == {}


def model_opt(tmp_path, **train):
    with open(os.path.join(ROOT, 'options', 'train', 'train_vHeatIR_tiny_denoise_gray.yml')) as f:
        opt = yaml.safe_load(f)
    opt.update(num_gpu=0, is_train=True, dist=False, rank=0, world_size=1)
    opt['network_g'].update(embed_dim=8, depths=[1])
    opt['train'].update(ema_decay=0, **train)
    opt['path'].update(models=str(tmp_path), training_states=str(tmp_path), experiments_root=str(tmp_path))
    return opt


def test_heat_lr_mult_scales_the_learning_rate_of_the_heat_parameters(tmp_path):
    model = VHeatIRModel(model_opt(tmp_path, heat_lr_mult=10))
    groups = model.optimizer_g.param_groups
    base_lr = model.opt['train']['optim_g']['lr']
    assert [g['lr'] for g in groups] == [pytest.approx(base_lr), pytest.approx(10 * base_lr)]
    heat = {id(p) for n, p in model.net_g.named_parameters() if '.fve.' in n or '.diffusivity.' in n}
    assert {id(p) for p in groups[1]['params']} == heat
    assert not heat & {id(p) for p in groups[0]['params']}
    assert len(VHeatIRModel(model_opt(tmp_path)).optimizer_g.param_groups) == 1   # default: one group
    with pytest.raises(ValueError, match='heat_lr_mult'):
        VHeatIRModel(model_opt(tmp_path, heat_lr_mult=0))


def test_pooled_cached_folders_and_8bit_inputs(tmp_path):
    rng = np.random.default_rng(0)
    (tmp_path / 'a').mkdir()
    (tmp_path / 'b').mkdir()
    cv2.imwrite(str(tmp_path / 'a' / 'g.png'), rng.integers(0, 256, (40, 50), dtype=np.uint8))
    colour = rng.integers(0, 256, (36, 44, 3), dtype=np.uint8)
    cv2.imwrite(str(tmp_path / 'b' / 'c.png'), colour)
    opt = {'phase': 'train', 'dataroots_gt': [str(tmp_path / 'a'), str(tmp_path / 'b')], 'in_chans': 1,
           'io_backend': {'type': 'disk'}, 'sigma': [10, 50], 'gt_size': 32, 'cache_images': True}
    ds = DenoisingDataset(opt)
    assert [os.path.basename(p) for p in ds.paths] == ['g.png', 'c.png']
    # The colour file is read as OpenCV's gray, once, before any sample is drawn.
    assert np.array_equal(ds._cache[ds.paths[1]][..., 0], cv2.imread(ds.paths[1], cv2.IMREAD_GRAYSCALE))
    (tmp_path / 'b' / 'c.png').unlink()
    assert ds[1]['gt'].shape == (1, 32, 32)   # served from memory

    one_folder = {k: v for k, v in opt.items() if k != 'dataroots_gt'}
    one_folder.update(dataroot_gt=str(tmp_path / 'a'), cache_images=False)
    quantised = DenoisingDataset({**one_folder, 'eight_bit_prob': 1.0})
    float_input = DenoisingDataset(one_folder)
    for i in range(4):
        lq = quantised[0]['lq'].numpy() * 255
        assert np.abs(lq - np.rint(lq)).max() < 1e-3 and lq.min() >= 0 and lq.max() <= 255
    lq = float_input[0]['lq'].numpy() * 255
    assert np.abs(lq - np.rint(lq)).max() > 0.1
    with pytest.raises(ValueError, match='eight_bit_prob'):
        DenoisingDataset({**one_folder, 'eight_bit_prob': 1.5})
    with pytest.raises(ValueError, match='one dataroot_gt'):
        DenoisingDataset({**opt, 'io_backend': {'type': 'lmdb'}})
    with pytest.raises(ValueError, match='either dataroot_gt'):
        DenoisingDataset({**opt, 'dataroot_gt': str(tmp_path / 'a')})


def test_camera_noise_is_correlated_and_its_cond_is_what_sigma_auto_reads(tmp_path):
    rng = np.random.default_rng(0)
    field = camera_noise(96, 96, 0.0, 0.4, rng)
    assert field.shape == (96, 96, 3) and field.dtype == np.float32
    # Demosaicking correlates neighbours and the colour matrix correlates channels; white noise does neither.
    flat = field.reshape(-1, 3)
    assert np.corrcoef(field[:, :-1, 1].ravel(), field[:, 1:, 1].ravel())[0, 1] > 0.3
    assert abs(np.corrcoef(flat.T)[0, 1]) > 0.05
    noisy = 0.5 + field * (8 / 255 / field.std())
    s1, s2 = white_noise_sigma(noisy), flat_noise_sigma(noisy, 2)
    assert s2 / s1 > 5   # the camera branch of sigma='auto'
    assert camera_sigma_reading(1.2) < camera_sigma_reading(0.0)   # blur hides noise from the reading

    cv2.imwrite(str(tmp_path / 'grey.png'), np.full((140, 150, 3), 120, np.uint8))
    opt = {'phase': 'train', 'dataroot_gt': str(tmp_path), 'io_backend': {'type': 'disk'}, 'in_chans': 3,
           'sigma': [0, 55], 'gt_size': 128, 'camera_noise_prob': 1.0, 'camera_sigma': [4, 12]}
    for in_chans, blur in ((3, [0, 1.2]), (1, [0, 1.2]), (3, [2, 2.5])):
        ds = DenoisingDataset({**opt, 'in_chans': in_chans, 'camera_blur': blur})
        for _ in range(3):
            sample = ds[0]
            lq = sample['lq'].numpy().transpose(1, 2, 0)
            assert lq.shape == (128, 128, in_chans) and np.abs(lq * 255 - np.rint(lq * 255)).max() < 1e-3
            # The cond is the per-pixel std times the reading of the camera branch of sigma='auto'.
            reading = estimate_noise_sigma(lq) / 255
            assert abs(reading / sample['cond'].item() - 1) < 0.12, (reading, sample['cond'].item())
            noise_std = (lq - 120 / 255).std() * 255
            assert 3.5 < noise_std < 12.5
    white = DenoisingDataset({**opt, 'camera_noise_prob': 0.0, 'sigma': 10})
    assert abs((white[0]['lq'].numpy() - 120 / 255).std() * 255 - 10) < 0.5
    with pytest.raises(ValueError, match='camera_noise_prob'):
        DenoisingDataset({**opt, 'camera_noise_prob': 2})
    with pytest.raises(ValueError, match='camera_blur'):
        DenoisingDataset({**opt, 'camera_blur': [0, 9]})


def test_quantize_8bit_and_the_benchmarks_8bit_protocol(tmp_path):
    x = np.array([-0.2, 0.0, 0.3 / 255, 0.6 / 255, 0.5, 1.0, 1.3], dtype=np.float32)
    assert np.allclose(quantize_8bit(x) * 255, [0, 0, 0, 1, 128, 255, 255], atol=1e-4)
    path = str(tmp_path / 'img.png')
    cv2.imwrite(path, np.random.default_rng(0).integers(0, 256, (24, 30), dtype=np.uint8))
    gt, lq_float = make_pair(path, 'denoise', False, 50)
    gt8, lq_8 = make_pair(path, 'denoise', False, 50, eight_bit=True)
    assert np.array_equal(gt, gt8) and lq_float.min() < 0 and lq_float.max() > 1
    assert np.array_equal(lq_8, quantize_8bit(lq_float))   # the same noise, then saved as 8 bits
    with pytest.raises(ValueError, match='denoising'):
        make_pair(path, 'jpeg', False, 10, eight_bit=True)


def test_option_files_are_plain_data(tmp_path):
    marker = tmp_path / 'ran'
    evil = tmp_path / 'evil.yml'
    evil.write_text(f'name: evil\nevil: !!python/object/apply:os.system ["touch {marker}"]\n')
    for script in ('train.py', 'test.py'):
        proc = subprocess.run([sys.executable, os.path.join(ROOT, 'vheatir', script), '-opt', str(evil)],
                              capture_output=True, text=True, cwd=tmp_path, timeout=300)
        assert proc.returncode == 2 and not marker.exists()
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f'error: {evil} (line 2):') and 'Traceback' not in proc.stderr
    with pytest.raises(OptionFileError, match='python/object/apply'):
        load_option_file(str(evil))
    opt = load_option_file(os.path.join(ROOT, 'options', 'train', 'train_vHeatIR_S_denoise_gray.yml'))
    assert list(opt)[:2] == ['name', 'model_type'] and opt['train']['optim_g']['lr'] == 4e-4   # !!float kept


@pytest.mark.parametrize('name', sorted(n for n in os.listdir(os.path.join(ROOT, 'options', 'train'))
                                        if n.startswith(('train_vHeatIR_S_', 'train_vHeatIR_M_'))))
def test_every_S_and_M_option_file_builds_its_network_and_datasets(name, tmp_path):
    from basicsr.utils.registry import DATASET_REGISTRY
    from vheatir.archs import arch_class
    opt = load_option_file(os.path.join(ROOT, 'options', 'train', name))
    net_opt = dict(opt['network_g'])
    arch_class(net_opt.pop('type'))(**net_opt)
    rng = np.random.default_rng(0)
    cv2.imwrite(str(tmp_path / 'a.png'), rng.integers(0, 256, (64, 72, 3), dtype=np.uint8))
    for phase, ds_opt in opt['datasets'].items():
        ds_opt = {k: v for k, v in ds_opt.items() if k not in ('dataroots_gt', 'cache_images')}
        ds = DATASET_REGISTRY.get(ds_opt['type'])({**ds_opt, 'phase': phase, 'dataroot_gt': str(tmp_path)})
        sample = ds[0]
        assert sample['lq'].shape[0] == net_opt['in_chans'] and 0 <= sample['cond'].item() <= 1


def test_ablation_options_differ_from_the_baseline_only_where_marked():
    folder = os.path.join(ROOT, 'options', 'ablation')
    base_path = os.path.join(folder, 'ablate_vHeatIR_S_denoise_gray_base.yml')
    base = load_option_file(base_path)
    unmarked = [line for line in open(base_path).read().splitlines() if not line.lstrip().startswith('#')]
    for name in sorted(os.listdir(folder)):
        lines = open(os.path.join(folder, name)).read().splitlines()
        body = [line for line in lines if not line.lstrip().startswith('#') and 'ABLATION' not in line]
        kept = [line for line in unmarked if not line.startswith('name:')]
        # Every unmarked line of the variant is a line of the baseline.
        assert set(body) - {line for line in body if line.startswith('name:')} <= set(kept), name
        opt = load_option_file(os.path.join(folder, name))
        assert opt['train']['total_iter'] == base['train']['total_iter'] and opt['manual_seed'] == base['manual_seed']


def test_colour_augmentations_permute_channels_and_scale_saturation(tmp_path):
    (tmp_path / 'c').mkdir()
    bgr = np.zeros((32, 32, 3), np.uint8)
    bgr[..., 0], bgr[..., 1], bgr[..., 2] = 40, 120, 200   # one saturated colour
    cv2.imwrite(str(tmp_path / 'c' / 'x.png'), bgr)
    opt = {'phase': 'train', 'dataroot_gt': str(tmp_path / 'c'), 'in_chans': 3, 'io_backend': {'type': 'disk'},
           'quality': 90, 'gt_size': 32}
    from vheatir.data.restoration_dataset import JPEGDataset
    permuted = JPEGDataset({**opt, 'permute_channels': True})
    orders = {tuple(permuted[0]['gt'][:, 0, 0].mul(255).round().int().tolist()) for _ in range(60)}
    assert len(orders) == 6 and all(sorted(o) == [40, 120, 200] for o in orders)
    gray = JPEGDataset({**opt, 'saturation': [0, 0]})[0]['gt']
    assert torch.all(gray.max(0).values - gray.min(0).values < 1.5 / 255)   # saturation 0: gray
    same = JPEGDataset({**opt, 'saturation': [1, 1]})[0]['gt']
    assert torch.equal(same, JPEGDataset(opt)[0]['gt'])
    stronger = JPEGDataset({**opt, 'saturation': [1.5, 1.5]})[0]['gt']
    assert (stronger[:, 0, 0].max() - stronger[:, 0, 0].min()) > (same[:, 0, 0].max() - same[:, 0, 0].min())
    with pytest.raises(ValueError, match='colour'):
        JPEGDataset({**opt, 'in_chans': 1, 'permute_channels': True})


def test_ablation_table_from_logs_and_jsons(tmp_path, monkeypatch):
    sys.path.insert(0, os.path.join(ROOT, 'scripts'))
    try:
        import ablations
    finally:
        sys.path.pop(0)
    log = tmp_path / 'base.log'
    log.write_text('2026-01-01 10:00:00,000 INFO: Start training from epoch: 0, iter: 0\n'
                   '2026-01-01 10:01:00,000 INFO: [x..][epoch:  0, iter:      50, lr:(1e-4,)] l_pix: 1\n'
                   '2026-01-01 10:02:00,000 INFO: [x..][epoch:  0, iter:     100, lr:(1e-4,)] l_pix: 1\n'
                   '2026-01-01 11:00:00,000 INFO: Start training from epoch: 0, iter: 100\n'
                   '2026-01-01 11:00:30,000 INFO: [x..][epoch:  0, iter:     150, lr:(1e-4,)] l_pix: 1\n')
    # Two runs: 120 s to iteration 100, then 30 s to 150; the hour between them is not training.
    assert ablations.training_time(str(log)) == {'seconds': 150.0, 'iterations': 150}

    monkeypatch.setattr(ablations, 'LOGS', str(tmp_path))
    monkeypatch.setattr(ablations, 'RESULTS', str(tmp_path))
    monkeypatch.setattr(ablations, 'TABLE_JSON', str(tmp_path / 'table.json'))
    doc = tmp_path / 'doc.md'
    doc.write_text(f'intro\n{ablations.BEGIN}\nold\n{ablations.END}\nend\n')
    monkeypatch.setattr(ablations, 'DOC', str(doc))
    for name, shift in (('base', 0.0), ('other', 0.5)):
        if name != 'base':
            (tmp_path / f'{name}.log').write_text(log.read_text())
        for suffix, _, cols in ablations.EVALUATIONS:
            results = [{'set': s, 'level': lvl, 'mean': {'psnr': 25.0 + lvl / 100 + shift}} for s, lvl in cols]
            (tmp_path / f'{name}_{suffix}.json').write_text(json.dumps({'results': results}))
        (tmp_path / f'{name}_k.json').write_text(json.dumps({'median_rel_change': 0.01 if name == 'base' else 0.5}))
    assert ablations.table(['base', 'other', 'missing']) == 0
    text = doc.read_text()
    assert 'old' not in text and text.startswith('intro') and text.endswith('end\n')
    rows = [line for line in text.splitlines() if line.startswith('| other')]
    assert len(rows) == 1 and '| +0.50 | +0.50 |' in rows[0] and '50.00%' in rows[0] and '| 1.00 |' in rows[0]
    assert [r['variant'] for r in json.loads((tmp_path / 'table.json').read_text())['rows']] == ['base', 'other']


def test_force_yml_lists_are_literals_not_code(tmp_path):
    marker = tmp_path / 'ran'
    proc = subprocess.run([sys.executable, os.path.join(ROOT, 'vheatir', 'train.py'), '-opt',
                           os.path.join(ROOT, 'options', 'train', 'train_vHeatIR_tiny_denoise_gray.yml'),
                           '--force_yml', f'train:scheduler:periods=[__import__("os").system("touch {marker}")]'],
                          capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert proc.returncode == 2 and not marker.exists() and 'Traceback' not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith('error: --force_yml:')
