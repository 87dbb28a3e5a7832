"""Real training and testing runs through BasicSR's pipelines, from the tiny option files."""
import glob
import os
import subprocess
import sys

import pytest
import torch
import yaml

from vheatir.data.samples import write_tiny_dataset

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY_TRAIN = os.path.join(ROOT, 'options', 'train', 'train_vHeatIR_tiny_denoise_gray.yml')
TINY_TEST = os.path.join(ROOT, 'options', 'test', 'test_vHeatIR_tiny_denoise_gray.yml')


def run(script, opt_path, cwd, *extra):
    proc = subprocess.run([sys.executable, os.path.join(ROOT, 'vheatir', script), '-opt', opt_path, *extra],
                          cwd=cwd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout + proc.stderr


def write_opt(base, path, edit):
    with open(base) as f:
        opt = yaml.safe_load(f)
    edit(opt)
    with open(path, 'w') as f:
        yaml.safe_dump(opt, f)
    return path


@pytest.fixture(scope='module')
def workdir(tmp_path_factory):
    """A working directory with tiny gray data as a folder and as an LMDB, like datasets/ would hold."""
    wd = tmp_path_factory.mktemp('work')
    write_tiny_dataset(str(wd / 'datasets' / 'tiny_gray'), train_size=96, val_size=64, val_count=2, lmdb=True)
    return wd


def test_train_from_lmdb_then_auto_resume_then_test(workdir):
    def lmdb_20(opt):
        opt['datasets']['train']['dataroot_gt'] = 'datasets/tiny_gray/train.lmdb'
        opt['datasets']['train']['io_backend'] = {'type': 'lmdb'}
        opt['train']['total_iter'] = 20

    opt = write_opt(TINY_TRAIN, str(workdir / 'tiny_lmdb.yml'), lmdb_20)
    log = run('train.py', opt, workdir)
    exp = workdir / 'experiments' / 'train_vHeatIR_tiny_denoise_gray'
    assert (exp / 'training_states' / '20.state').exists()
    assert 'samples_per_s' in log and '# psnr' in log

    # The same run, now asked to go to 40: --auto_resume continues from iteration 20 on the CPU.
    def lmdb_40(opt):
        lmdb_20(opt)
        opt['train']['total_iter'] = 40

    log = run('train.py', write_opt(TINY_TRAIN, str(workdir / 'tiny_lmdb40.yml'), lmdb_40), workdir, '--auto_resume')
    assert 'Resuming training from epoch: 0, iter: 20' in log
    assert 'iter:      25' in log and 'iter:       5,' not in log
    state = torch.load(exp / 'training_states' / '40.state', weights_only=False)
    assert state['iter'] == 40
    # The cosine schedule continued where it left off. BasicSR steps schedulers from iteration 2 on,
    # so after 40 iterations they have stepped 39 times; a restarted schedule would show 20.
    assert state['schedulers'][0]['last_epoch'] == 39
    w20 = torch.load(exp / 'models' / 'net_g_20.pth')['params']
    w40 = torch.load(exp / 'models' / 'net_g_40.pth')['params']
    assert any(not torch.equal(w20[k], w40[k]) for k in w20)

    # Evaluate the saved model with the test pipeline: the log reports PSNR and SSIM.
    log = run('test.py', TINY_TEST, workdir)
    logs = glob.glob(str(workdir / 'results' / 'test_vHeatIR_tiny_denoise_gray' / '*.log'))
    text = open(logs[0]).read()
    assert '# psnr:' in text and '# ssim:' in text
    assert len(glob.glob(str(workdir / 'results' / 'test_vHeatIR_tiny_denoise_gray' / 'visualization' / '*' / '*.png'))) == 2


def test_train_jpeg_from_folder_validates_psnrb(workdir):
    def jpeg(opt):
        opt['name'] = 'tiny_jpeg'
        for phase in ('train', 'val'):
            ds = opt['datasets'][phase]
            ds['type'] = 'JPEGDataset'
            del ds['sigma']
            ds['quality'] = [10, 90] if phase == 'train' else 20
        opt['train']['total_iter'] = 10
        opt['val']['val_freq'] = 10
        opt['val']['metrics']['psnrb'] = {'type': 'calculate_psnrb', 'crop_border': 0, 'test_y_channel': False}

    log = run('train.py', write_opt(TINY_TRAIN, str(workdir / 'tiny_jpeg.yml'), jpeg), workdir)
    assert '# psnrb:' in log and '# psnr:' in log and '# ssim:' in log


def test_swinir_baseline_trains_and_validates_on_any_size(workdir):
    """The same-budget SwinIR option file runs through our pipeline; validation images of 60 px
    (not a multiple of its window) work because the model pads them."""
    write_tiny_dataset(str(workdir / 'datasets' / 'tiny_odd'), train_size=96, val_size=60, val_count=2)

    def tiny_swinir(opt):
        opt['name'] = 'tiny_swinir'
        opt['network_g'].update(depths=[1], embed_dim=16, num_heads=[2])
        for phase in ('train', 'val'):
            opt['datasets'][phase].update(dataroot_gt=f'datasets/tiny_odd/{phase}', io_backend={'type': 'disk'})
        opt['datasets']['train'].update(batch_size_per_gpu=2, dataset_enlarge_ratio=1)
        opt['datasets']['val']['sigma'] = 25
        opt['train']['total_iter'] = 4
        opt['val']['val_freq'] = 4
        opt['logger'].update(print_freq=2, save_checkpoint_freq=4)

    swinir = os.path.join(ROOT, 'options', 'train', 'SwinIR', 'train_SwinIR_S_denoise_gray.yml')
    log = run('train.py', write_opt(swinir, str(workdir / 'tiny_swinir.yml'), tiny_swinir), workdir)
    assert 'Network [SwinIR] is created' in log and '# psnr' in log
    assert (workdir / 'experiments' / 'tiny_swinir' / 'models' / 'net_g_4.pth').exists()
