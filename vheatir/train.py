"""Train from a BasicSR option file: ``python vheatir/train.py -opt options/train/<file>.yml``.

Run from the repository root: experiments are written to ``./experiments/<name>``
and relative dataroots in option files resolve against the working directory.

Distributed: ``torchrun --nproc_per_node=N vheatir/train.py -opt FILE --launcher pytorch``
(gloo on the CPU, nccl on GPUs; see docs/training.md). ``--auto_resume`` continues from the newest
complete checkpoint.

A bad training image (:class:`~vheatir.data.restoration_dataset.BadSampleError`) or a
diverged run (:class:`~vheatir.models.vheatir_model.TrainingDivergedError`) ends the run
with one ``error: ...`` line on stderr (and in the log file) and exit status 1; an option file
that is not plain YAML data (e.g. a ``!!python/...`` tag) with one line and exit status 2.

Debugging aid: with ``VHEATIR_DUMP_RANK_WEIGHTS=DIR`` in the environment every process
writes its final ``net_g`` state dict to ``DIR/rank<r>.pth`` (to check DDP replicas agree).
"""
import logging
import os
import sys

if __package__ in (None, ''):
    # Run as a script: Python put vheatir/ itself on sys.path, which would shadow top-level
    # names (data, models, test, ...). Put the repository root there instead.
    sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

import vheatir  # noqa: E402

vheatir.use_basicsr()  # registers archs/datasets/models/metrics; safe option-file parsing
from vheatir.allocator import reuse_freed_memory  # noqa: E402
from vheatir.compat import OptionFileError, patch_basicsr_dist, patch_basicsr_train, read_train_options  # noqa: E402
from vheatir.data.restoration_dataset import BadSampleError  # noqa: E402
from vheatir.models.vheatir_model import TrainingDivergedError  # noqa: E402

DUMP_ENV = 'VHEATIR_DUMP_RANK_WEIGHTS'


def _capture_model(store: dict) -> None:
    """Keep a reference to the model ``train_pipeline`` builds (it does not return it)."""
    import basicsr.train

    build_model = basicsr.train.build_model

    def build_and_keep(opt):
        store['model'] = build_model(opt)
        return store['model']

    basicsr.train.build_model = build_and_keep


def _dump_rank_weights(model, folder: str) -> None:
    import torch
    import torch.distributed as dist

    rank = dist.get_rank() if dist.is_available() and dist.is_initialized() else 0
    os.makedirs(folder, exist_ok=True)
    state = {k: v.detach().cpu() for k, v in model.get_bare_model(model.net_g).state_dict().items()}
    torch.save(state, os.path.join(folder, f'rank{rank}.pth'))


def _log_to_file(message: str) -> None:
    """Append ``message`` to the run's log file (not to the console, which gets the ``error:`` line)."""
    logger = logging.getLogger('basicsr')
    record = logger.makeRecord(logger.name, logging.ERROR, __file__, 0, message, None, None)
    for handler in logger.handlers:
        if isinstance(handler, logging.FileHandler):
            handler.handle(record)


def main() -> int:
    reuse_freed_memory()  # validation runs whole images; see vheatir/allocator.py
    try:
        options = read_train_options(sys.argv[1:])
    except OptionFileError as err:
        print(f'error: {err}', file=sys.stderr)
        return 2
    patch_basicsr_dist(options)
    patch_basicsr_train()
    from basicsr.train import train_pipeline
    import torch.distributed as dist

    store: dict = {}
    _capture_model(store)
    status = 0
    try:
        train_pipeline(os.getcwd())
    except OptionFileError as err:  # a --force_yml value
        print(f'error: {err}', file=sys.stderr)
        status = 2
    except (BadSampleError, TrainingDivergedError) as err:
        message = err.reason if isinstance(err, BadSampleError) else str(err)
        rank = dist.get_rank() if dist.is_available() and dist.is_initialized() else 0
        distributed = dist.is_available() and dist.is_initialized()
        # Every rank stops on a divergence (the check is global); one report is enough.
        if isinstance(err, BadSampleError) or rank == 0:
            prefix = f'[rank {rank}] ' if distributed and isinstance(err, BadSampleError) else ''
            _log_to_file(f'{prefix}{message}')
            print(f'error: {prefix}{message}', file=sys.stderr, flush=True)
        status = 1
    else:
        if os.environ.get(DUMP_ENV) and 'model' in store:
            _dump_rank_weights(store['model'], os.environ[DUMP_ENV])
    if dist.is_available() and dist.is_initialized():
        if status == 0:
            # Rank 0 still validates and saves after the others finish; a rank that tears down its
            # gloo connections while a peer still holds them can abort at exit.
            dist.barrier()
            dist.destroy_process_group()
        # On failure the other ranks may be blocked in a collective: do not wait for them,
        # torchrun stops the remaining processes when one exits with an error.
    return status


if __name__ == '__main__':
    sys.exit(main())
