"""A strict reader of the Prometheus text exposition format (0.0.4), enough to check what mqttd
serves: every line parses, every sample belongs to a family announced by HELP and TYPE before
it, no series appears twice, counters end in _total, histograms are cumulative."""
import re

NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL = r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\\\|\\"|\\n)*)"'
SAMPLE = re.compile(rf"^({NAME})(?:\{{((?:{LABEL})(?:,{LABEL})*)?\}})? (\S+)$")
VALUE = re.compile(r"^(?:[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?|[+-]?Inf|NaN)$")


def unescape(v):
    return v.replace("\\n", "\n").replace('\\"', '"').replace("\\\\", "\\")


def parse(text):
    """Returns {family: {"type": t, "help": h, "samples": {(name, frozenset(labels)): value}}};
    raises AssertionError on anything that does not conform."""
    assert text.endswith("\n"), "the exposition must end with a line feed"
    families = {}
    current = None
    for number, line in enumerate(text.splitlines(), 1):
        where = f"line {number}: {line!r}"
        if line.startswith("# HELP "):
            name, _, help_text = line[7:].partition(" ")
            assert re.fullmatch(NAME, name), where
            assert name not in families, f"{where}: family announced twice"
            families[name] = {"help": help_text, "type": None, "samples": {}}
            current = name
        elif line.startswith("# TYPE "):
            name, _, kind = line[7:].partition(" ")
            assert name == current and families[name]["type"] is None, f"{where}: TYPE without its HELP"
            assert kind in ("counter", "gauge", "histogram", "summary", "untyped"), where
            families[name]["type"] = kind
        elif line.startswith("#") or not line:
            raise AssertionError(f"{where}: unexpected line")
        else:
            m = SAMPLE.match(line)
            assert m, f"{where}: not a sample"
            name, value = m.group(1), m.group(len(m.groups()))
            assert VALUE.match(value), f"{where}: bad value"
            labels = {}
            if m.group(2):
                for lm in re.finditer(LABEL, m.group(2)):
                    assert lm.group(1) not in labels, f"{where}: label twice"
                    labels[lm.group(1)] = unescape(lm.group(2))
            family = families.get(current)
            assert family is not None, f"{where}: sample before any HELP"
            base = current
            if family["type"] == "histogram":
                assert name in (base + "_bucket", base + "_sum", base + "_count"), f"{where}: not of {base}"
            else:
                assert name == base, f"{where}: sample of another family than {base}"
            key = (name, frozenset(labels.items()))
            assert key not in family["samples"], f"{where}: series twice"
            family["samples"][key] = float(value)
    for name, f in families.items():
        assert f["type"], f"{name}: no TYPE"
        if f["type"] == "counter":
            assert name.endswith("_total"), f"{name}: a counter's name ends in _total"
        if f["type"] == "histogram":
            check_histogram(name, f["samples"])
    return families


def check_histogram(name, samples):
    series = {}
    for (sample, labels), value in samples.items():
        if sample.endswith("_bucket"):
            d = dict(labels)
            le = d.pop("le")
            series.setdefault(frozenset(d.items()), []).append((float(le), value))
    for labels, buckets in series.items():
        buckets.sort()
        assert buckets[-1][0] == float("inf"), f"{name}: no +Inf bucket"
        counts = [v for _, v in buckets]
        assert counts == sorted(counts), f"{name}: buckets not cumulative"
        assert samples[(name + "_count", labels)] == counts[-1], f"{name}: _count is not the +Inf bucket"


def value(families, family, **labels):
    """The value of one series (0 when the family exists but not the series)."""
    f = families.get(family)
    if f is None:  # a histogram's _count, _sum or _bucket
        f = families[family.rsplit("_", 1)[0]]
    want = frozenset((k, str(v)) for k, v in labels.items())
    for (name, series_labels), v in f["samples"].items():
        if name == family and series_labels == want:
            return v
    return 0.0
