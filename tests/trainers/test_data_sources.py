"""Named corpora: the text that ships with Python, Debian's fortune files and its license texts."""

import pytest

from trainers.config import FORTUNES_DIR, LICENSES_DIR, DataConfig
from trainers.data import load_corpus


@pytest.mark.skipif(not FORTUNES_DIR.is_dir(), reason="Debian's fortunes package is not installed")
def test_fortunes_is_read_as_bytes_with_a_held_out_split():
    c = load_corpus(DataConfig(source="fortunes"))
    assert c.train_tokens > 2_000_000 and c.val.size > 100_000 and c.vocab_size == 256
    assert bytes(c.val[:0]) == b""  # ids are bytes


@pytest.mark.skipif(not LICENSES_DIR.is_dir(), reason="Debian's base-files license texts are not installed")
def test_licenses_are_the_plain_license_files_once_each_without_their_links():
    import trainers.data as td

    c = load_corpus(DataConfig(source="licenses"))
    files = [f for f in LICENSES_DIR.iterdir() if f.is_file() and not f.is_symlink()]
    text = td._package_text("licenses", LICENSES_DIR, "base-files")
    assert len(text.encode()) == sum(f.stat().st_size for f in files) + 2 * (len(files) - 1)  # each file once
    assert text.count("Version 3, 29 June 2007") == 2  # GPL-3 and LGPL-3, not again through their GPL/LGPL links
    assert c.train_tokens + c.val.size == len(text.encode()) and c.vocab_size == 256


def test_a_named_package_source_that_is_missing_says_which_package_to_install(tmp_path):
    import trainers.data as td

    with pytest.raises(FileNotFoundError, match="apt-get install base-files"):
        td._package_text("licenses", tmp_path, "base-files")


def test_named_sources_refuse_token_formats():
    with pytest.raises(ValueError, match="needs data.source = a token file"):
        DataConfig(source="fortunes", format="uint16")


def test_one_shard_batches_keep_the_recorded_data_order():
    """The one-shard fast path draws the same windows as the general path (shard draw, then starts)."""
    import numpy as np

    from trainers.data import Corpus

    stream = np.arange(5_000, dtype=np.uint8)
    corpus = Corpus(train=(stream,), val=stream[:500])
    fast, ref = np.random.default_rng(7), np.random.default_rng(7)
    for batch_size in (1, 3, 16):
        x, y = corpus.batch(fast, batch_size, 64)
        ref.choice(1, size=batch_size, p=[1.0])
        starts = ref.integers(0, stream.size - 65, size=batch_size)
        idx = starts[:, None] + np.arange(65)[None, :]
        assert (x.numpy() == stream[idx][:, :-1]).all() and (y.numpy() == stream[idx][:, 1:]).all()
