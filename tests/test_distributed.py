"""Distributed training on the CPU: torchrun with two processes (gloo), DDP without CUDA."""
import glob
import os
import socket
import subprocess
import sys

import pytest
import torch
import yaml

from vheatir.data.samples import write_tiny_dataset

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY_TRAIN = os.path.join(ROOT, 'options', 'train', 'train_vHeatIR_tiny_denoise_gray.yml')
NAME = 'train_vHeatIR_tiny_denoise_gray'


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def tiny_opt(total_iter=6, batch=2):
    """The tiny option file on an LMDB, made smaller still (seconds on a CPU)."""
    with open(TINY_TRAIN) as f:
        opt = yaml.safe_load(f)
    train = opt['datasets']['train']
    train.update(dataroot_gt='datasets/tiny_gray/train.lmdb', io_backend={'type': 'lmdb'},
                 batch_size_per_gpu=batch, dataset_enlarge_ratio=4)
    opt['datasets']['val']['dataroot_gt'] = 'datasets/tiny_gray/val'
    opt['network_g'].update(embed_dim=8, depths=[1])
    opt['train'].update(total_iter=total_iter)
    opt['train']['scheduler']['periods'] = [8]  # >= total_iter, also when a resumed run goes further
    opt['val']['val_freq'] = 4
    opt['logger'].update(print_freq=2, save_checkpoint_freq=4)
    return opt


@pytest.fixture(scope='module')
def workdir(tmp_path_factory):
    wd = tmp_path_factory.mktemp('dist')
    write_tiny_dataset(str(wd / 'datasets' / 'tiny_gray'), train_size=48, val_size=32, val_count=1, lmdb=True)
    return wd


def torchrun(workdir, opt, logs, *extra):
    opt_path = workdir / f'{logs.name}.yml'
    with open(opt_path, 'w') as f:
        yaml.safe_dump(opt, f)
    env = dict(os.environ, VHEATIR_DUMP_RANK_WEIGHTS=str(workdir / 'rank_weights'), OMP_NUM_THREADS='1')
    cmd = [sys.executable, '-m', 'torch.distributed.run', '--nnodes=1', '--nproc_per_node=2',
           f'--master_port={free_port()}', f'--log_dir={logs}', '--redirects=3',
           os.path.join(ROOT, 'vheatir', 'train.py'), '-opt', str(opt_path), '--launcher', 'pytorch', *extra]
    proc = subprocess.run(cmd, cwd=workdir, env=env, capture_output=True, text=True, timeout=300)
    out = {r: open(glob.glob(str(logs / '**' / str(r) / 'stderr.log'), recursive=True)[0]).read() for r in (0, 1)}
    assert proc.returncode == 0, proc.stderr[-3000:] + out[0][-3000:] + out[1][-3000:]
    return out


def assert_ranks_in_sync(workdir):
    """Every rank ends with the same weights, equal to what rank 0 saved as the latest model."""
    dump = workdir / 'rank_weights'
    w0, w1 = torch.load(dump / 'rank0.pth'), torch.load(dump / 'rank1.pth')
    saved = torch.load(workdir / 'experiments' / NAME / 'models' / 'net_g_latest.pth')['params']
    assert w0.keys() == w1.keys() == saved.keys()
    assert all(torch.equal(w0[k], w1[k]) and torch.equal(w0[k], saved[k]) for k in w0)
    return w0


def test_torchrun_two_cpu_processes_stay_in_sync_and_resume(workdir):
    out = torchrun(workdir, tiny_opt(total_iter=6), workdir / 'run1')
    # The ranks start from different seeds and see different data: unsynchronised replicas would differ.
    w6 = assert_ranks_in_sync(workdir)
    exp = workdir / 'experiments' / NAME
    w4 = torch.load(exp / 'models' / 'net_g_4.pth')['params']
    assert any(not torch.equal(w4[k], w6[k]) for k in w6)  # it did train after iteration 4

    # Rank 0 states both batch sizes, trains, validates, logs and saves; rank 1 says nothing.
    assert 'Batch size: 2 per process x 2 process(es) = 4 global' in out[0]
    assert 'iter:       6' in out[0] and '# psnr' in out[0]
    assert 'INFO' not in out[1] and '# psnr' not in out[1]
    assert len(glob.glob(str(exp / '*.log'))) == 1
    assert sorted(os.listdir(exp / 'models')) == ['net_g_4.pth', 'net_g_latest.pth']
    assert os.listdir(exp / 'training_states') == ['4.state']
    state = torch.load(exp / 'training_states' / '4.state', weights_only=False)
    assert state['iter'] == 4 and state['schedulers'][0]['last_epoch'] == 3

    # Both processes resume from iteration 4 and run to 8, still in sync.
    out = torchrun(workdir, tiny_opt(total_iter=8), workdir / 'run2', '--auto_resume')
    assert 'Resuming training from epoch: 0, iter: 4.' in out[0] and 'iter:       8' in out[0]
    w8 = assert_ranks_in_sync(workdir)
    assert any(not torch.equal(w6[k], w8[k]) for k in w8)
    state = torch.load(exp / 'training_states' / '8.state', weights_only=False)
    assert state['iter'] == 8 and state['schedulers'][0]['last_epoch'] == 7


def test_each_rank_samples_its_own_shard():
    """basicsr's EnlargedSampler, as train_pipeline builds it: disjoint shards covering the epoch."""
    from basicsr.data.data_sampler import EnlargedSampler

    data = list(range(8))
    for epoch in (0, 1):
        shards = []
        for rank in (0, 1):
            sampler = EnlargedSampler(data, num_replicas=2, rank=rank, ratio=1)
            sampler.set_epoch(epoch)
            shards.append(list(sampler))
        assert len(shards[0]) == len(shards[1]) == 4
        assert not set(shards[0]) & set(shards[1]) and sorted(shards[0] + shards[1]) == data

def test_only_rank_0_writes_checkpoints(tmp_path, monkeypatch):
    """Saving is rank-0 only (basicsr's master_only), atomic, and leaves no temporary files."""
    import basicsr.utils.dist_util as dist_util
    from vheatir.models.vheatir_model import VHeatIRModel

    opt = tiny_opt()
    opt.update(num_gpu=0, is_train=True, dist=False, rank=0, world_size=1)
    opt['path'].update(models=str(tmp_path / 'models'), training_states=str(tmp_path / 'states'))
    os.makedirs(opt['path']['models']), os.makedirs(opt['path']['training_states'])
    model = VHeatIRModel(opt)

    monkeypatch.setattr(dist_util, 'get_dist_info', lambda: (1, 2))
    model.save(0, 4)
    assert os.listdir(tmp_path / 'models') == [] and os.listdir(tmp_path / 'states') == []
    monkeypatch.undo()
    model.save(0, 4)
    assert sorted(os.listdir(tmp_path / 'models')) == ['net_g_4.pth']
    assert sorted(os.listdir(tmp_path / 'states')) == ['4.state']
    saved = torch.load(tmp_path / 'models' / 'net_g_4.pth')
    assert set(saved) == {'params', 'params_ema'}


def test_slurm_node_list_is_passed_to_scontrol_as_one_argument(monkeypatch):
    import vheatir.compat as compat
    calls = []

    def fake_run(args, **kwargs):
        calls.append((args, kwargs))
        return subprocess.CompletedProcess(args, 0, stdout='node-a\nnode-b\n')

    monkeypatch.setattr(compat.subprocess, 'run', fake_run)
    monkeypatch.setattr(compat.dist, 'init_process_group', lambda **kwargs: None)
    hostile = 'node-[1-2]; touch /tmp/pwned'
    for var, value in {'SLURM_PROCID': '0', 'SLURM_NODELIST': hostile, 'SLURM_NTASKS': '2'}.items():
        monkeypatch.setenv(var, value)
    for var in ('MASTER_ADDR', 'MASTER_PORT', 'RANK', 'WORLD_SIZE'):
        monkeypatch.delenv(var, raising=False)
    compat.init_dist('slurm', backend='gloo')
    (args, kwargs), = calls
    assert args == ['scontrol', 'show', 'hostname', hostile] and not kwargs.get('shell')
    assert os.environ['MASTER_ADDR'] == 'node-a' and os.environ['WORLD_SIZE'] == '2'
