"""The shipped weights against weights/manifest.json: each file is the one listed, each loads, and
each training chain's first link (the file a run continued from) is in the repository unchanged."""
import os

import pytest

from vheatir.complexity import count_params
from vheatir.weights import MANIFEST, load_network, read_manifest, sha256_of

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENTRIES = read_manifest(MANIFEST)


@pytest.mark.parametrize('entry', ENTRIES, ids=[e['file'] for e in ENTRIES])
def test_each_listed_file_is_the_shipped_one_and_its_chain_starts_from_a_kept_file(entry):
    path = os.path.join(os.path.dirname(MANIFEST), entry['file'])
    assert sha256_of(path) == entry['sha256']
    net, meta = load_network(path)
    assert count_params(net) == entry['params']
    assert (meta['task'], meta['color']) == (entry['task'], entry['color'])
    parent = entry.get('training', {}).get('continued_from')
    if parent:
        parent_path = os.path.join(ROOT, parent['file'])
        assert os.path.isfile(parent_path), f"{entry['file']} continued from {parent['file']}, which is missing"
        assert sha256_of(parent_path) == parent['sha256']
        assert entry['training']['total_iterations'] > entry['training']['iterations']
