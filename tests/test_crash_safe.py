"""Crash-safe training: SIGKILL then --auto_resume, atomic checkpoints, NaN/inf losses, bad data."""
import copy
import glob
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import cv2
import lmdb
import numpy as np
import pytest
import torch
import yaml

import vheatir.amp
from vheatir.data.restoration_dataset import BadSampleError, DenoisingDataset
from vheatir.data.samples import write_tiny_dataset
from vheatir.models.vheatir_model import TrainingDivergedError, VHeatIRModel

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY_TRAIN = os.path.join(ROOT, 'options', 'train', 'train_vHeatIR_tiny_denoise_gray.yml')
TRAIN = [sys.executable, os.path.join(ROOT, 'vheatir', 'train.py')]
ENV = dict(os.environ, OMP_NUM_THREADS='1')


def tiny_opt(name, total_iter, save_freq, **train_data):
    """The tiny option file on an LMDB, smaller still; ``train_data`` overrides dataset options."""
    with open(TINY_TRAIN) as f:
        opt = yaml.safe_load(f)
    opt['name'] = name
    opt['datasets']['train'].update({'dataroot_gt': 'datasets/tiny_gray/train.lmdb', 'io_backend': {'type': 'lmdb'},
                                     'batch_size_per_gpu': 2, 'dataset_enlarge_ratio': 4, **train_data})
    opt['network_g'].update(embed_dim=8, depths=[1])
    opt['train']['total_iter'] = total_iter
    opt['train']['scheduler']['periods'] = [total_iter]
    opt['val']['val_freq'] = 10 ** 6  # validate only at the end
    opt['logger'].update(print_freq=1, save_checkpoint_freq=save_freq)
    return opt


def write_opt(workdir, opt):
    path = workdir / f"{opt['name']}.yml"
    with open(path, 'w') as f:
        yaml.safe_dump(opt, f)
    return str(path)


def make_data(root):
    write_tiny_dataset(str(root), train_size=48, val_size=32, val_count=1, lmdb=True)


@pytest.fixture(scope='module')
def workdir(tmp_path_factory):
    wd = tmp_path_factory.mktemp('crash')
    make_data(wd / 'datasets' / 'tiny_gray')
    return wd


def test_sigkill_then_auto_resume_continues_where_it_stopped(workdir):
    total, freq = 160, 10
    opt = write_opt(workdir, tiny_opt('crash', total, freq))
    exp = workdir / 'experiments' / 'crash'
    states = exp / 'training_states'
    with open(workdir / 'killed.txt', 'w') as err:
        proc = subprocess.Popen([*TRAIN, '-opt', opt], cwd=workdir, env=ENV, stdout=err, stderr=err)
        try:
            deadline = time.monotonic() + 120
            while not glob.glob(str(states / '*.state')) and proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.02)
            assert proc.poll() is None, 'training ended before it could be killed'
            os.kill(proc.pid, signal.SIGKILL)
        finally:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL
    killed_log = (workdir / 'killed.txt').read_text()
    last_iter = max(int(i) for i in re.findall(r'iter:\s+(\d+),', killed_log))

    # What the kill left: the newest complete state. Simulate the worst a crash could leave on top:
    # a truncated newer state whose network file exists (a non-atomic writer's kill mid-save) and
    # leftovers of interrupted atomic saves.
    done = max(int(os.path.basename(p).split('.')[0]) for p in glob.glob(str(states / '*.state')))
    assert last_iter - done <= freq  # at most one checkpoint interval of work lost
    models = exp / 'models'
    bad = done + freq
    shutil.copy(models / f'net_g_{done}.pth', models / f'net_g_{bad}.pth')
    data = (states / f'{done}.state').read_bytes()
    (states / f'{bad}.state').write_bytes(data[:len(data) // 2])
    (states / f'{bad + freq}.state.tmp').write_bytes(data[:100])
    (models / f'net_g_{bad + freq}.pth.tmp').write_bytes(b'\0' * 100)

    proc = subprocess.run([*TRAIN, '-opt', opt, '--auto_resume'], cwd=workdir, env=ENV, capture_output=True,
                          text=True, timeout=300)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-3000:]
    assert f'Skipping training state {states / f"{bad}.state"}: cannot load it' in log
    assert re.search(rf'Resuming training from epoch: \d+, iter: {done}\.', log)
    assert f'net_g_{done}.pth, with param key: [params_ema]' in log  # the EMA continues too
    assert f'iter: {done + 1:7d},' in log and f'iter: {done:7d},' not in log

    final = torch.load(states / f'{total}.state', weights_only=False)
    assert final['iter'] == total
    # basicsr steps schedulers from iteration 2 on: after `total` iterations, total - 1 steps.
    assert final['schedulers'][0]['last_epoch'] == total - 1
    # Adam's step count continued from the checkpoint (a fresh optimiser would show total - done).
    assert all(int(s['step']) == total for s in final['optimizers'][0]['state'].values())
    assert not glob.glob(str(exp / '**' / '*.tmp'), recursive=True)


def test_corrupt_lmdb_value_gives_one_named_error(tmp_path):
    make_data(tmp_path / 'datasets' / 'tiny_gray')
    env = lmdb.open(str(tmp_path / 'datasets' / 'tiny_gray' / 'train.lmdb'), map_size=10 * 1024 ** 2)
    with env.begin(write=True) as txn:
        assert txn.get(b'camera') is not None
        txn.put(b'camera', b'\x89PNG\r\n\x1a\n this is not an image')
    env.close()
    # One dataloader worker: the error is raised in a worker process and re-raised by PyTorch.
    opt = write_opt(tmp_path, tiny_opt('corrupt', 20, 10, num_worker_per_gpu=1, dataset_enlarge_ratio=1))
    proc = subprocess.run([*TRAIN, '-opt', opt], cwd=tmp_path, env=ENV, capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    errors = [line for line in proc.stderr.splitlines() if line.startswith('error:')]
    assert len(errors) == 1 and "LMDB key 'camera'" in errors[0] and 'corrupt' in errors[0], proc.stderr[-3000:]
    assert 'Traceback' not in proc.stderr


def model_opt(tmp_path, max_bad_steps):
    opt = tiny_opt('nan', 10, 10)
    opt.update(num_gpu=0, is_train=True, dist=False, rank=0, world_size=1)
    opt['train']['max_bad_steps'] = max_bad_steps
    opt['path'].update(models=str(tmp_path), training_states=str(tmp_path), experiments_root=str(tmp_path))
    return opt


def batch(bad=None):
    g = torch.Generator().manual_seed(0)
    gt = torch.rand(2, 1, 32, 32, generator=g)
    lq = gt + 0.1 * torch.randn(2, 1, 32, 32, generator=g)
    if bad == 'nan':
        lq[1, 0, 5, 5] = float('nan')
    elif bad == 'inf':
        gt[0, 0, 0, 0] = float('inf')
    return {'lq': lq, 'gt': gt, 'cond': torch.full((2, 1), 0.1)}


class Records(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def test_non_finite_loss_is_skipped_then_stops_training(tmp_path):
    model = VHeatIRModel(model_opt(tmp_path, max_bad_steps=3))
    records = Records()
    logging.getLogger('basicsr').addHandler(records)
    try:
        weights = copy.deepcopy(model.net_g.state_dict())
        ema = copy.deepcopy(model.net_g_ema.state_dict())
        for it, bad in enumerate(['nan', 'inf'], start=1):
            model.feed_data(batch(bad))
            model.optimize_parameters(it)
        # Skipped: no update to the weights, the optimiser or the EMA.
        assert all(torch.equal(weights[k], v) for k, v in model.net_g.state_dict().items())
        assert all(torch.equal(ema[k], v) for k, v in model.net_g_ema.state_dict().items())
        assert not model.optimizer_g.state
        assert any('Iteration 2: non-finite loss (inf)' in m and '2 consecutive' in m for m in records.messages)

        model.feed_data(batch())
        model.optimize_parameters(3)  # a good step trains and resets the count
        assert any(not torch.equal(weights[k], v) for k, v in model.net_g.state_dict().items())
        model.save(0, 3)

        model.feed_data(batch('nan'))
        model.optimize_parameters(4)
        model.optimize_parameters(5)
        with pytest.raises(TrainingDivergedError, match=r'iteration 6: .*3 consecutive iterations \(4-6.*'
                                                        r'max_bad_steps = 3.*last good checkpoint is iteration 3'):
            model.optimize_parameters(6)
    finally:
        logging.getLogger('basicsr').removeHandler(records)


def test_bf16_on_a_cpu_without_native_bf16_trains_in_float32(tmp_path, monkeypatch):
    monkeypatch.setattr(vheatir.amp, 'cpu_has_native_bf16', lambda: False)
    opt = model_opt(tmp_path, max_bad_steps=3)
    opt['train']['amp'] = 'bf16'
    opt.setdefault('val', {})['amp'] = 'fp16'   # only bf16 lacks kernels here
    records = Records()
    logging.getLogger('basicsr').addHandler(records)
    try:
        model = VHeatIRModel(opt)
    finally:
        logging.getLogger('basicsr').removeHandler(records)
    assert model.opt['train']['amp'] is None and model.opt['val']['amp'] == 'fp16'
    assert any(m.startswith('train: amp bf16 ignored, this CPU') and 'float32' in m for m in records.messages)
    monkeypatch.setattr(vheatir.amp, 'cpu_has_native_bf16', lambda: True)
    native = model_opt(tmp_path, max_bad_steps=3)
    native['train']['amp'] = 'bf16'
    assert VHeatIRModel(native).opt['train']['amp'] == 'bf16'


def test_train_reports_errors_in_one_line(monkeypatch, capsys):
    """vheatir/train.py turns our data and divergence errors into one ``error:`` line and exit status 1."""
    import basicsr.train
    import basicsr.utils.dist_util
    import basicsr.utils.options
    from vheatir import train

    for module, name in [(basicsr.train, 'build_model'), (basicsr.train, 'load_resume_state'),
                         (basicsr.utils.options, 'init_dist'), (basicsr.utils.dist_util, 'init_dist')]:
        monkeypatch.setattr(module, name, getattr(module, name))  # restored after the test
    monkeypatch.setattr(sys, 'argv', ['train.py', '-opt', TINY_TRAIN])
    reason = "Cannot decode LMDB key 'camera' in x.lmdb: corrupt or not an image."
    from_worker = BadSampleError(  # how PyTorch re-raises a worker's exception in the main process
        'Caught BadSampleError in DataLoader worker process 0.\nOriginal Traceback (most recent call last):\n'
        '  File "restoration_dataset.py", line 1, in _read_gt\n'
        f'vheatir.data.restoration_dataset.BadSampleError: {reason}\n')
    diverged = TrainingDivergedError('training stopped at iteration 7: the loss was NaN')
    for err, expected in [(from_worker, reason), (BadSampleError(reason), reason), (diverged, str(diverged))]:
        def fail(root, err=err):
            raise err
        monkeypatch.setattr(basicsr.train, 'train_pipeline', fail)
        assert train.main() == 1
        assert capsys.readouterr().err == f'error: {expected}\n'


def test_bad_samples_are_named_or_skipped(tmp_path):
    make_data(tmp_path)
    lmdb_dir = tmp_path / 'train.lmdb'
    env = lmdb.open(str(lmdb_dir), map_size=10 * 1024 ** 2)
    with env.begin(write=True) as txn:
        txn.put(b'camera', b'garbage')
    env.close()
    with open(lmdb_dir / 'meta_info.txt', 'a') as f:
        f.write('ghost.png (48,48,1) 1\n')
    cv2.imwrite(str(tmp_path / 'train' / 'small.png'), np.zeros((20, 30), np.uint8))

    def dataset(root, backend, **extra):
        return DenoisingDataset(dict(name='t', phase='train', dataroot_gt=str(root), io_backend={'type': backend},
                                     in_chans=1, sigma=25, gt_size=32, **extra))

    db = dataset(lmdb_dir, 'lmdb')
    with pytest.raises(BadSampleError, match=r"Cannot decode LMDB key 'camera' in .*train\.lmdb: corrupt"):
        db[db.paths.index('camera')]
    with pytest.raises(BadSampleError, match=r"Missing LMDB key 'ghost'"):
        db[db.paths.index('ghost')]

    folder = dataset(tmp_path / 'train', 'disk')
    with pytest.raises(BadSampleError, match=r'small\.png is 20x30'):
        folder[folder.paths.index(str(tmp_path / 'train' / 'small.png'))]
    os.remove(tmp_path / 'train' / 'rocket.png')
    with pytest.raises(BadSampleError, match=r'Cannot read image file .*rocket\.png'):
        folder[folder.paths.index(str(tmp_path / 'train' / 'rocket.png'))]

    # skip_bad_images: another image instead, and one warning per bad image.
    records = Records()
    logging.getLogger('basicsr').addHandler(records)
    try:
        skipping = dataset(lmdb_dir, 'lmdb', skip_bad_images=True)
        for _ in range(2):
            sample = skipping[skipping.paths.index('camera')]
            assert sample['gt_path'] not in ('camera', 'ghost') and sample['gt'].shape == (1, 32, 32)
        assert sum("'camera'" in m for m in records.messages) == 1
    finally:
        logging.getLogger('basicsr').removeHandler(records)


def test_atomic_writes_to_one_path_at_once_each_land_whole(tmp_path):
    """Two writers of one file (two processes exporting the same ONNX cache entry) each write their
    own temporary file: the last rename wins, whole, nothing is left behind, and the mode follows
    the umask. A shared ``<path>.tmp`` would let the inner writer truncate the outer one's file."""
    from vheatir.atomic import atomic_write

    target = tmp_path / 'sub' / 'model.onnx'

    def outer(f):
        f.write(b'first half, ')
        atomic_write(str(target), lambda g: g.write(b'inner writer'))
        f.write(b'second half')

    old_umask = os.umask(0o027)
    try:
        atomic_write(str(target), outer)
    finally:
        os.umask(old_umask)
    assert target.read_bytes() == b'first half, second half'
    assert os.listdir(target.parent) == ['model.onnx']
    assert target.stat().st_mode & 0o777 == 0o640

    with pytest.raises(OSError):  # a failing writer keeps the old file and leaves no temporary file
        atomic_write(str(target), lambda f: (f.write(b'partial'), (_ for _ in ()).throw(OSError('disk full'))))
    assert target.read_bytes() == b'first half, second half'
    assert os.listdir(target.parent) == ['model.onnx']
