"""Delimited files: delimiter, header, column choice, quoting, and the errors of each."""

from pathlib import Path

import pytest

from rnnkit.data.labeled import read_labeled
from rnnkit.errors import RnnkitError


def write(path: Path, content: str) -> Path:
    path.write_text(content, encoding="utf-8", newline="")
    return path


def test_csv_header_quoted_delimiters_and_newlines(tmp_path):
    f = write(
        tmp_path / "d.csv",
        'id,text,label\n1,"good, really\nvery good",pos\n2,"she said ""no""",neg\n3,meh,neg\n',
    )
    data = read_labeled(f)
    assert data.inputs == ["good, really\nvery good", 'she said "no"', "meh"]
    assert data.labels == ["pos", "neg", "neg"]
    assert data.where == [f"{f}:2", f"{f}:4", f"{f}:5"]  # the line each row starts on


def test_header_names_default_case_insensitive_and_given(tmp_path):
    f = write(tmp_path / "d.csv", "Sentiment,Review\n1,fine\n0,poor\n")
    data = read_labeled(f)
    assert (data.inputs, data.labels) == (["fine", "poor"], ["1", "0"])
    g = write(tmp_path / "g.csv", "tweet,polarity,user\nhello,1,x\nbye,0,y\n")
    data = read_labeled(g, text_column="tweet", label_column="polarity")
    assert (data.inputs, data.labels) == (["hello", "bye"], ["1", "0"])
    data = read_labeled(g, text_column="1", label_column="2")  # numbers: no header assumed
    assert data.inputs == ["tweet", "hello", "bye"]


def test_missing_columns_list_the_columns(tmp_path):
    f = write(tmp_path / "d.csv", "text,polarity\nhi,1\nho,0\n")
    listed = "the columns are: text, polarity"
    with pytest.raises(RnnkitError, match=rf"d\.csv: no label column .*{listed}"):
        read_labeled(f)
    with pytest.raises(RnnkitError, match=rf"no column named 'stars'; {listed}"):
        read_labeled(f, label_column="stars")
    g = write(tmp_path / "g.csv", "tweet,polarity\nhi,1\nho,0\nhe,1\nha,0\n")
    with pytest.raises(RnnkitError, match=r"first row \(tweet, polarity\) looks like a header"):
        read_labeled(g)


def test_headerless_two_columns_label_first_or_last(tmp_path):
    last = write(tmp_path / "last.tsv", 'a " quoted " film\tpos\n"dull\tneg\n')
    data = read_labeled(last)  # TSV: quote characters are text
    assert (data.inputs, data.labels) == (['a " quoted " film', '"dull'], ["pos", "neg"])
    first = write(tmp_path / "first.txt", "pos\tgood film\nneg\tbad one\n")
    data = read_labeled(first)  # every line has a tab: tab-separated
    assert (data.inputs, data.labels) == (["good film", "bad one"], ["pos", "neg"])
    ambiguous = write(tmp_path / "amb.tsv", "good\tpos\nbad\tneg\n")
    with pytest.raises(RnnkitError, match="cannot tell which of the 2 columns holds the label"):
        read_labeled(ambiguous)
    assert read_labeled(ambiguous, label_column="2").labels == ["pos", "neg"]


def test_space_layout_sst(tmp_path):
    f = write(tmp_path / "stsa.binary.dev", "1 a stirring , funny film\n\n0 dull  stuff \n")
    data = read_labeled(f)
    assert data.inputs == ["a stirring , funny film", "dull  stuff"]
    assert data.labels == ["1", "0"] and data.where == [f"{f}:1", f"{f}:3"]
    g = write(tmp_path / "g.txt", "a stirring film 1\ndull 0\n")
    assert read_labeled(g, label_column="2").labels == ["1", "0"]
    data = read_labeled(g, delimiter="space", label_column="2")
    assert data.inputs == ["a stirring film", "dull"]


def test_row_errors_name_file_and_line(tmp_path):
    short = write(tmp_path / "s.csv", "text,label\nhi,1\nalone\n")
    with pytest.raises(RnnkitError, match=r"s\.csv:3: 1 field\(s\), expected 2 as in the header"):
        read_labeled(short)
    extra = write(tmp_path / "e.csv", "hi,1\ngood, bad,0\n")
    with pytest.raises(RnnkitError, match=r"e\.csv:2: 3 field\(s\), expected 2 \(quote fields"):
        read_labeled(extra, text_column="1", label_column="2")
    sst = write(tmp_path / "stsa", "1 fine\n0\n")
    with pytest.raises(RnnkitError, match=r"stsa:2: 1 field\(s\), expected 2"):
        read_labeled(sst)
    empty_label = write(tmp_path / "l.csv", "text,label\nhi,\n")
    with pytest.raises(RnnkitError, match=r"l\.csv:2: the label field is empty"):
        read_labeled(empty_label)
    unclosed = write(tmp_path / "u.csv", 'text,label\nhi,1\n"open,0\nx,1\n')
    with pytest.raises(RnnkitError, match=r"u\.csv:3: not valid CSV from this line"):
        read_labeled(unclosed)


def test_file_level_errors(tmp_path):
    with pytest.raises(RnnkitError, match=r"h\.csv holds a header row but no examples"):
        read_labeled(write(tmp_path / "h.csv", "text,label\n"))
    with pytest.raises(RnnkitError, match=r"z\.csv is empty"):
        read_labeled(write(tmp_path / "z.csv", ""))
    wide = write(tmp_path / "w.tsv", "a\tb\tc\nd\te\tf\n")
    with pytest.raises(RnnkitError, match="3 columns and no header row naming them"):
        read_labeled(wide)
    assert read_labeled(wide, text_column="3", label_column="1").inputs == ["c", "f"]
    with pytest.raises(RnnkitError, match="column 5 asked for, the rows have 3"):
        read_labeled(wide, text_column="5", label_column="1")
    with pytest.raises(RnnkitError, match="column numbers count from 1"):
        read_labeled(wide, text_column="0", label_column="1")
    with pytest.raises(RnnkitError, match="delimiter '::': expected one character"):
        read_labeled(wide, delimiter="::")
    with pytest.raises(RnnkitError, match=r"single class \('x', 2 examples\)"):
        read_labeled(write(tmp_path / "one.csv", "text,label\nhi,x\nho,x\n"))


def test_plain_sentences_are_not_read_as_label_text(tmp_path):
    f = write(tmp_path / "rt.pos", "".join(f"word{i} and more words\n" for i in range(20)))
    with pytest.raises(RnnkitError, match=r"20 distinct labels in 20 rows .*give LABEL=PATH"):
        read_labeled(f)
    assert len(set(read_labeled(f, label_column="1", text_column="2").labels)) == 20


def test_delimiter_given_by_name(tmp_path):
    f = write(tmp_path / "d.txt", "text;label\nhi;1\nho;0\n")
    assert read_labeled(f, delimiter=";").labels == ["1", "0"]
    g = write(tmp_path / "g.dat", "hi\t1\nho\t0\n")
    assert read_labeled(g, delimiter="tab", label_column="2").labels == ["1", "0"]
