"""Parallel text: aligned reading, reversible BPE, length filtering, target layout, batching."""

import gzip

import pytest
import torch

from recur.data.parallel import (
    ParallelBatcher,
    ParallelTexts,
    ParallelTokenizerConfig,
    ParallelTokenizers,
    encode_pairs,
    encode_sources,
    read_lines,
    read_parallel,
)
from recur.data.vocab import SubwordTokenizer

SRC = ["Ein Mann läuft.", "Zwei Hunde spielen im Schnee.", "Eine Frau liest ein Buch.",
       "Ein Kind isst.", "Der Mann sitzt auf einer Bank."]
TGT = ["A man runs.", "Two dogs play in the snow.", "A woman reads a book.",
       "A child eats.", "The man's sitting on a bench."]


def write(path, lines, gz=False):
    data = ("\n".join(lines) + "\n").encode("utf-8")
    if gz:
        data = gzip.compress(data)
    path.write_bytes(data)
    return path


def test_reads_aligned_plain_and_gzip_files(tmp_path):
    src = write(tmp_path / "a.de.gz", SRC, gz=True)
    tgt = write(tmp_path / "a.en", TGT)
    texts = read_parallel(src, tgt)
    assert texts.src == SRC and texts.tgt == TGT and len(texts) == 5


def test_line_count_mismatch_names_both_files_and_counts(tmp_path):
    src = write(tmp_path / "x.de", SRC)
    tgt = write(tmp_path / "x.en", TGT[:3])
    with pytest.raises(ValueError, match=r"x\.de has 5, .*x\.en has 3"):
        read_parallel(src, tgt)


def test_missing_file_and_folder_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="source file"):
        read_parallel(tmp_path / "nope.de", tmp_path / "nope.en")
    with pytest.raises(IsADirectoryError, match="is a folder"):
        read_lines(tmp_path)


def test_keeps_empty_lines_in_the_middle(tmp_path):
    assert read_lines(write(tmp_path / "e.txt", ["a", "", "b"])) == ["a", "", "b"]


def test_metaspace_bpe_decodes_back_to_the_text():
    tok = SubwordTokenizer(vocab_size=300, lowercase=False, strip_html=False,
                           pretokenizer="metaspace").fit(TGT * 3 + ["A dog, (running)."])
    for text in TGT + ["A man's  dog, (running).  "]:
        assert tok.decode(tok.encode(text)) == " ".join(text.split())
    assert tok.decode(tok.encode("A dog{}")) == "A dog"  # unseen characters: [UNK], dropped


def test_metaspace_needs_bpe():
    with pytest.raises(ValueError, match="pretokenizer 'metaspace' needs kind 'bpe'"):
        SubwordTokenizer(kind="wordpiece", pretokenizer="metaspace")


@pytest.mark.parametrize("joint", [True, False])
@pytest.mark.parametrize("kind", ["bpe", "word"])
def test_tokenizers_save_and_load(tmp_path, joint, kind):
    config = ParallelTokenizerConfig(kind=kind, joint=joint, vocab_size=200, min_freq=1)
    tokenizers = ParallelTokenizers.fit(ParallelTexts(SRC, TGT), config)
    assert (tokenizers.src is tokenizers.tgt) == joint
    assert tokenizers.bos_id == tokenizers.tgt.vocab_size
    assert tokenizers.eos_id == tokenizers.bos_id + 1 == tokenizers.tgt_vocab_size - 1
    tokenizers.save(tmp_path)
    loaded = ParallelTokenizers.load(tmp_path, config)
    ids = loaded.tgt.encode(TGT[1])
    assert ids == tokenizers.tgt.encode(TGT[1])
    assert loaded.decode([tokenizers.bos_id, *ids, tokenizers.eos_id, 0]) == TGT[1]


def test_encode_pairs_drops_long_and_empty_pairs():
    config = ParallelTokenizerConfig(kind="word", vocab_size=100, min_freq=1)
    texts = ParallelTexts(SRC + [""], TGT + ["Nothing."])
    tokenizers = ParallelTokenizers.fit(texts, config)
    src, tgt, kept = encode_pairs(tokenizers, texts, max_length=4)
    assert kept == [0, 3]  # 1, 2 and 4 have a side longer than 4 words, 5 an empty source
    assert all(len(s) <= 4 and len(t) <= 4 for s, t in zip(src, tgt, strict=True))


def test_long_sources_are_truncated_with_a_warning():
    config = ParallelTokenizerConfig(kind="word", vocab_size=100, min_freq=1)
    tokenizers = ParallelTokenizers.fit(ParallelTexts(SRC, TGT), config)
    with pytest.warns(UserWarning, match="longer than the model's max_length 3"):
        ids = encode_sources(tokenizers, SRC, max_length=3)
    assert max(map(len, ids)) == 3


def test_target_layout_bos_eos_and_padding():
    batcher = ParallelBatcher([[5, 6], [7]], [[1, 2, 3], [4]], bos_id=10, eos_id=11,
                              batch_size=2, bucket=False)
    batch = next(iter(batcher))
    order = batch.index.tolist()
    assert order == [0, 1]  # longest source first
    assert batch.src.tolist() == [[5, 6], [7, 0]] and batch.src_lengths.tolist() == [2, 1]
    assert batch.tgt_in.tolist() == [[10, 1, 2, 3], [10, 4, 0, 0]]
    assert batch.tgt_out.tolist() == [[1, 2, 3, 11], [4, 11, 0, 0]]
    assert batch.num_tokens == 6


def test_epochs_are_reproducible_and_differ():
    src = [[i + 1] * (1 + i % 7) for i in range(50)]
    tgt = [[i + 1] for i in range(50)]
    batcher = ParallelBatcher(src, tgt, bos_id=100, eos_id=101, batch_size=8, shuffle=True, seed=3)
    first = [b.index.tolist() for b in batcher.batches(0)]
    assert first == [b.index.tolist() for b in batcher.batches(0)]
    assert first != [b.index.tolist() for b in batcher.batches(1)]
    assert sorted(i for b in first for i in b) == list(range(50))
    assert len(batcher) == 7


def test_source_only_batches_for_translation():
    batch = next(iter(ParallelBatcher([[3, 4]], None, bos_id=9, eos_id=8)))
    assert batch.tgt_in.tolist() == [[9]]
    assert torch.equal(batch.src, torch.tensor([[3, 4]]))
