"""CoNLL and CoNLL-U reading, writing predictions back, and the errors a file can cause."""

from collections import Counter
from pathlib import Path

import pytest

from rnnkit.data.conll import TaggedCorpus, read_tagged, write_tagged
from rnnkit.data.tag_schemes import convert_tags, detect_scheme, extract_spans
from rnnkit.errors import RnnkitError

CONLL = """-DOCSTART- -X- -X- O

EU NNP B-NP B-ORG
rejects VBZ B-VP O
German JJ B-NP B-MISC

Peter NNP B-NP B-PER
Blackburn NNP I-NP I-PER


-DOCSTART- -X- -X- O

BRUSSELS NNP B-NP B-LOC
"""

CONLLU = """# sent_id = 1
# text = Du vin.
1-2\tDu\t_\t_\t_\t_\t_\t_\t_\t_
1\tDe\tde\tADP\tIN\t_\t3\tcase\t_\t_
2\tle\tle\tDET\tDT\tDefinite=Def\t3\tdet\t_\t_
3\tvin\tvin\tNOUN\tNN\t_\t0\troot\t_\tSpaceAfter=No
3.1\test\têtre\tAUX\t_\t_\t_\t_\t3:cop\t_
4\t.\t.\tPUNCT\t.\t_\t3\tpunct\t_\t_

# sent_id = 2
1\tNew York\tNew York\tPROPN\tNNP\t_\t0\troot\t_\t_
"""


def write(path: Path, content: str | bytes) -> Path:
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return path


# ---- CoNLL -----------------------------------------------------------------------------------


def test_read_conll_sentences_lines_and_defaults(tmp_path):
    c = read_tagged(write(tmp_path / "x.txt", CONLL))
    assert isinstance(c, TaggedCorpus) and c.format == "conll"
    assert (len(c), c.num_tokens, c.token_column, c.tag_column) == (3, 6, 0, 3)
    assert [s.tokens for s in c.sentences] == [
        ["EU", "rejects", "German"],
        ["Peter", "Blackburn"],
        ["BRUSSELS"],
    ]
    assert c.tags == [["B-ORG", "O", "B-MISC"], ["B-PER", "I-PER"], ["B-LOC"]]
    assert [s.line for s in c.sentences] == [3, 7, 13]
    assert c.sentences[0].columns[1] == ["rejects", "VBZ", "B-VP", "O"]
    assert c.scheme == "BIO"


def test_read_conll_columns_and_whitespace(tmp_path):
    text = "\ufeffa\tDT  I-NP\r\nb NN\tI-NP \r\n\r\nc\u00a0d NN I-NP\n"  # BOM, CRLF, tabs, NBSP
    path = write(tmp_path / "x.txt", text)
    c = read_tagged(path, tag_column=1)
    assert c.tags == [["DT", "NN"], ["NN"]] and c.scheme is None and c.tag_column == 1
    assert c.sentences[1].tokens == ["c\u00a0d"]  # only spaces and tabs separate columns
    assert read_tagged(path, tag_column=-2).tag_column == 1
    c = read_tagged(path, token_column="1", tag_column="-1")  # numbers from a command line
    assert (c.token_column, c.tag_column, c.sentences[0].tokens) == (1, 2, ["DT", "NN"])
    assert read_tagged(path).scheme == "IOB1"


@pytest.mark.parametrize(
    ("content", "kwargs", "message"),
    [
        ("a B-PER\n", {"tag_column": 3}, r"x\.txt:1: 2 columns, but tag_column 3 needs .* 4"),
        ("a B-PER\n", {"tag_column": -3}, r"x\.txt:1: 2 columns, but tag_column -3 needs .* 3"),
        ("a NN O\nb NN O\n\nc O\n", {}, r"x\.txt:4: 2 columns, but line 1 has 3"),
        ("", {}, r"x\.txt is empty"),
        ("\n \n\n", {}, r"x\.txt is empty"),
        ("-DOCSTART- -X- -X- O\n\n", {}, r"x\.txt holds no sentence: .*-DOCSTART-"),
        ("a\nb\n", {}, r"x\.txt:1: token_column and tag_column are both column 0"),
        ("a O\n", {"tag_column": "upos"}, r"tag_column 'upos' .*CoNLL-U column name"),
        ("a O\n", {"tag_column": 1.5}, r"tag_column 1\.5 .*0-based column number"),
        ("a O\n", {"format": "iob"}, r"unknown format 'iob'.*auto, conll or conllu"),
    ],
)
def test_conll_errors(tmp_path, content, kwargs, message):
    with pytest.raises(RnnkitError, match=message):
        read_tagged(write(tmp_path / "x.txt", content), **kwargs)


def test_encoding_errors_name_the_line(tmp_path):
    with pytest.raises(RnnkitError, match=r"x\.txt:2: not UTF-8 text \(invalid byte 0xe9.*iconv"):
        read_tagged(write(tmp_path / "x.txt", b"a B-LOC\ncaf\xe9 B-LOC\n"))
    with pytest.raises(RnnkitError, match=r"y\.txt:1: NUL byte"):
        read_tagged(write(tmp_path / "y.txt", b"a\x00 O\n"))
    with pytest.raises(RnnkitError, match=r"cannot read .*missing\.txt"):
        read_tagged(tmp_path / "missing.txt")


# ---- CoNLL-U ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["x.conllu", "x.txt"])  # by extension, by content
def test_read_conllu(tmp_path, name):
    c = read_tagged(write(tmp_path / name, CONLLU))
    assert (c.format, c.token_column, c.tag_column, c.scheme) == ("conllu", "form", "upos", None)
    assert [s.tokens for s in c.sentences] == [["De", "le", "vin", "."], ["New York"]]
    assert c.tags == [["ADP", "DET", "NOUN", "PUNCT"], ["PROPN"]]
    assert [s.line for s in c.sentences] == [4, 11]
    assert len(c.sentences[0].columns[0]) == 10
    xpos = read_tagged(tmp_path / name, tag_column="xpos", token_column=2)
    assert xpos.tags == [["IN", "DT", "NN", "."], ["NNP"]] and xpos.tag_column == "xpos"
    assert xpos.sentences[0].tokens == ["de", "le", "vin", "."] and xpos.token_column == "lemma"


def test_conllu_errors(tmp_path):
    no_xpos = CONLLU.replace("\tIN\t", "\t_\t")
    with pytest.raises(RnnkitError, match=r"x\.conllu:4: no xpos tag.*use tag_column='upos'"):
        read_tagged(write(tmp_path / "x.conllu", no_xpos), tag_column="xpos")
    with pytest.raises(RnnkitError, match=r"x\.conllu:2: 9 tab-separated columns, CoNLL-U has 10"):
        read_tagged(write(tmp_path / "x.conllu", "# c\n1\ta\ta\tX\tX\t_\t0\troot\t_\n"))
    with pytest.raises(RnnkitError, match=r"x\.conllu:1: ID 'one' is not a word index"):
        read_tagged(write(tmp_path / "x.conllu", "one\ta\ta\tX\tX\t_\t0\troot\t_\t_\n"))
    with pytest.raises(RnnkitError, match=r"x\.conllu holds no sentence: .*comments"):
        read_tagged(write(tmp_path / "x.conllu", "# only a comment\n\n"))
    with pytest.raises(RnnkitError, match=r"tag_column 'pos' for CoNLL-U file .*upos, xpos"):
        read_tagged(write(tmp_path / "x.conllu", CONLLU), tag_column="pos")
    with pytest.raises(RnnkitError, match="both 'upos'"):
        read_tagged(tmp_path / "x.conllu", token_column=3)


# ---- writing predictions -----------------------------------------------------------------------


def test_write_tagged_conlleval_layout_round_trip(tmp_path):
    c = read_tagged(write(tmp_path / "x.txt", CONLL))
    pred = [["B-ORG", "O", "O"], ["B-PER", "B-PER"], ["B-LOC"]]
    out = write_tagged(c, pred, tmp_path / "out" / "pred.txt")
    lines = out.read_text(encoding="utf-8").split("\n")
    assert lines[:3] == [
        "EU NNP B-NP B-ORG B-ORG",
        "rejects VBZ B-VP O O",
        "German JJ B-NP B-MISC O",
    ]
    assert lines[3:5] == ["", "Peter NNP B-NP B-PER B-PER"]
    assert read_tagged(out, tag_column=-2).tags == c.tags
    assert read_tagged(out).tags == pred
    assert not list(out.parent.glob("*.tmp"))
    # A list of sentences writes the same; CoNLL-U keeps its tabs (forms may hold spaces).
    assert write_tagged(c.sentences, pred, tmp_path / "b.txt").read_text() == out.read_text()
    u = read_tagged(write(tmp_path / "x.conllu", CONLLU))
    text = write_tagged(u, [["A", "B", "C", "D"], ["E"]], tmp_path / "u.txt").read_text()
    assert text.split("\n")[4:6] == ["", "1\tNew York\tNew York\tPROPN\tNNP\t_\t0\troot\t_\t_\tE"]


def test_write_tagged_errors(tmp_path):
    c = read_tagged(write(tmp_path / "x.txt", CONLL))
    with pytest.raises(RnnkitError, match="2 predicted tag sequences for 3 sentences"):
        write_tagged(c, [["O"] * 3, ["O"] * 2], tmp_path / "p.txt")
    with pytest.raises(RnnkitError, match=r"sentence 1 \(line 7\) has 2 tokens but 1 predicted"):
        write_tagged(c, [["O"] * 3, ["O"], ["O"]], tmp_path / "p.txt")
    with pytest.raises(RnnkitError, match="predicted tag 'B PER' in sentence 2"):
        write_tagged(c, [["O"] * 3, ["O"] * 2, ["B PER"]], tmp_path / "p.txt")
    assert not (tmp_path / "p.txt").exists()


# ---- CoNLL-2003 --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("split", "sentences", "tokens", "entities"),
    [("valid", 3250, 51362, 5942), ("test", 3453, 46435, 5648)],
)
def test_conll2003_valid_test_counts(shared_data, split, sentences, tokens, entities):
    c = read_tagged(shared_data / "conll2003" / f"{split}.txt")
    assert (len(c), c.num_tokens, c.scheme) == (sentences, tokens, "BIO")
    assert sum(len(extract_spans(t)) for t in c.tags) == entities


def test_conll2003_train(shared_data):
    c = read_tagged(shared_data / "conll2003" / "train.txt")
    assert (len(c), c.num_tokens, c.token_column, c.tag_column) == (14041, 203621, 0, 3)
    # SOURCES.md says IOB1, but this copy (NeuroNER's) opens every entity with B-: BIO.
    assert c.scheme == "BIO"
    # The standard CoNLL-2003 train counts; seqeval's get_entities finds the same.
    entities = Counter(typ for tags in c.tags for typ, _, _ in extract_spans(tags))
    assert entities == {"LOC": 7140, "PER": 6600, "ORG": 6321, "MISC": 3438}
    b_tags = 0
    for tags in c.tags:
        iob1 = convert_tags(tags, "BIO", "IOB1")
        bioes = convert_tags(tags, "BIO", "BIOES")
        assert convert_tags(iob1, "IOB1", "BIO") == tags
        assert convert_tags(bioes, "BIOES", "BIO") == tags
        assert convert_tags(bioes, "BIOES", "IOB1") == iob1
        b_tags += sum(t.startswith("B-") for t in iob1)
    assert b_tags == 70  # IOB1 keeps B- only between adjacent entities of one type
    pos = [[cols[1] for cols in s.columns] for s in c.sentences]  # the POS column
    assert detect_scheme(pos) is None and len({t for tags in pos for t in tags}) == 45
