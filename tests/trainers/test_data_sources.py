"""Named corpora: the text that ships with Python, and Debian's fortune files."""

import pytest

from trainers.config import FORTUNES_DIR, DataConfig
from trainers.data import load_corpus


@pytest.mark.skipif(not FORTUNES_DIR.is_dir(), reason="Debian's fortunes package is not installed")
def test_fortunes_is_read_as_bytes_with_a_held_out_split():
    c = load_corpus(DataConfig(source="fortunes"))
    assert c.train_tokens > 2_000_000 and c.val.size > 100_000 and c.vocab_size == 256
    assert bytes(c.val[:0]) == b""  # ids are bytes


def test_named_sources_refuse_token_formats():
    with pytest.raises(ValueError, match="needs data.source = a token file"):
        DataConfig(source="fortunes", format="uint16")
