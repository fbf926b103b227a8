"""The text-prediction server: its JSON API through an HTTP client, its page in a real headless
Chromium (skipped where /usr/bin/chromium or chromedriver is absent)."""

import random
import re
import shutil
import sys
import tempfile
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from rnnkit import RnnkitError
from rnnkit.models.language_model import LMConfig
from rnnkit.serve import ServeConfig, bind, create_app, page
from rnnkit.tasks.lm import LMDataConfig, train_language_model
from rnnkit.tasks.text_generator import TextGenerator
from rnnkit.training import TrainConfig

httpx = pytest.importorskip("httpx")
uvicorn = pytest.importorskip("uvicorn")
with warnings.catch_warnings():  # newer Starlette would rather its TestClient ran on httpx2
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

WORDS = ["the", "cat", "dog", "sat", "ran", "on", "in", "a", "mat", "hat", "big", "red", "old"]
LIMITS = dict(max_body_bytes=2048, max_prompt_chars=300, max_length=60, max_top=5)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A char-level LSTM trained for two short epochs on lines of lowercase words."""
    tmp = tmp_path_factory.mktemp("serve")
    rng = random.Random(0)
    text = "".join(" ".join(rng.choice(WORDS) for _ in range(6)) + "\n" for _ in range(200))
    (tmp / "corpus.txt").write_text(text, encoding="utf-8")
    train_language_model(
        tmp / "corpus.txt",
        tmp / "run",
        LMConfig(hidden_size=32, num_layers=1, embedding_size=8),
        LMDataConfig(seq_length=16, batch_size=4, unk=False),  # unseen characters: 422
        TrainConfig(epochs=2, progress=False, device="cpu", lr=0.01),
    )
    return tmp / "run"


@pytest.fixture(scope="module")
def gen(run):
    return TextGenerator.load(run)


@pytest.fixture(scope="module")
def client(run):
    return TestClient(create_app(run, ServeConfig(**LIMITS)))


# ---- the API ----------------------------------------------------------------------------------


def test_the_page_is_one_file_that_fetches_nothing_from_elsewhere(client):
    r = client.get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    html = r.text
    assert html == page()
    for needed in ('id="text"', 'id="suggestions"', 'id="continue"', 'id="temperature"'):
        assert needed in html
    assert not re.search(r"https?://|(src|href)=[\"']?//", html)


def test_info_names_the_model_and_the_limits(client):
    info = client.get("/api/info").json()
    assert info["level"] == "char" and info["engine"] == "fp32" and info["cell"] == "lstm"
    assert info["limits"] == LIMITS


def test_predict_gives_the_generators_suggestions(client, gen):
    for text, top in [("the ca", 3), ("the ", 2), ("", 5)]:
        r = client.post("/api/predict", json={"text": text, "top": top})
        assert r.status_code == 200
        got = [(s["text"], s["probability"]) for s in r.json()["suggestions"]]
        assert got == gen.suggest(text, top)  # JSON floats round-trip exactly
        assert 1 <= len(got) <= top
    completions = client.post("/api/predict", json={"text": "the ca"}).json()["suggestions"]
    assert all(s["text"].startswith("ca") for s in completions)


def test_sampling_with_a_seed_is_reproducible(client, gen):
    body = {"prompt": "the ", "length": 40, "temperature": 0.9, "top_p": 0.9, "seed": 7}
    first = client.post("/api/sample", json=body).json()["text"]
    assert client.post("/api/sample", json=body).json()["text"] == first
    assert len(first) == 40  # characters: one per token
    assert first == "".join(gen.sample("the ", 40, temperature=0.9, top_p=0.9, seed=7))
    others = {client.post("/api/sample", json={**body, "seed": s}).json()["text"] for s in range(5)}
    assert len(others) > 1
    greedy = client.post("/api/sample", json={"prompt": "a", "length": 20, "temperature": 0})
    assert greedy.json()["text"] == "".join(gen.sample("a", 20, greedy=True))


def test_sample_defaults_need_no_fields(client):
    r = client.post("/api/sample", json={})
    assert r.status_code == 200  # length 200, or the limit where it is lower
    assert len(r.json()["text"]) == LIMITS["max_length"] == 60


PREDICT, SAMPLE = "/api/predict", "/api/sample"
JSON_TYPE = {"content-type": "application/json"}
BAD = {  # case: (route, request, status, part of the message)
    "too large": (PREDICT, dict(json={"text": "a" * 3000}), 413, "larger than 2048 bytes"),
    "not json": (PREDICT, dict(content=b"text=the", headers=JSON_TYPE), 400, "JSON"),
    "form encoded": (PREDICT, dict(data={"text": "the"}), 400, "JSON object"),
    "a json list": (PREDICT, dict(json=["the"]), 400, "JSON object"),
    "negative length": (SAMPLE, dict(json={"length": -5}), 422, "length"),
    "length over the limit": (SAMPLE, dict(json={"length": 61}), 422, "length"),
    "negative temperature": (SAMPLE, dict(json={"temperature": -1}), 422, "temperature"),
    "top_p of 0": (SAMPLE, dict(json={"top_p": 0}), 422, "top_p"),
    "negative seed": (SAMPLE, dict(json={"seed": -1}), 422, "seed"),
    "a length that is text": (SAMPLE, dict(json={"length": "ten"}), 422, "length"),
    "top of 0": (PREDICT, dict(json={"text": "a", "top": 0}), 422, "top"),
    "top over the limit": (PREDICT, dict(json={"text": "a", "top": 6}), 422, "top"),
    "no text": (PREDICT, dict(json={"top": 2}), 422, "text"),
    "an unknown field": (PREDICT, dict(json={"text": "a", "topk": 2}), 422, "topk"),
    "a prompt over the limit": (SAMPLE, dict(json={"prompt": "the " * 100}), 422, "prompt"),
    "a character never seen": (PREDICT, dict(json={"text": "the #cat"}), 422, "'#'"),
    "a prompt character never seen": (SAMPLE, dict(json={"prompt": "ZZ"}), 422, "'Z'"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_a_bad_request_is_a_one_line_json_error_and_serving_goes_on(client, case):
    route, kwargs, status, match = BAD[case]
    r = client.post(route, **kwargs)
    assert r.status_code == status, r.text
    assert list(r.json()) == ["error"]
    message = r.json()["error"]
    assert match in message and "\n" not in message
    good = client.post("/api/predict", json={"text": "the c", "top": 2})
    assert good.status_code == 200 and good.json()["suggestions"]


def test_a_chunked_body_over_the_limit_is_cut_off(client):
    chunks = (b"x" * 1000 for _ in range(5))  # no Content-Length: counted as it arrives
    r = client.post("/api/predict", content=chunks, headers={"content-type": "application/json"})
    assert r.status_code == 413 and "larger than 2048" in r.json()["error"]


def test_unknown_routes_and_methods_answer_in_the_same_form(client):
    assert client.get("/nothing").json() == {"error": "Not Found"}
    r = client.get("/api/predict")
    assert r.status_code == 405 and list(r.json()) == ["error"]


def test_config_and_missing_packages_are_clear_errors(run, monkeypatch):
    with pytest.raises(RnnkitError, match="engine must be one of"):
        ServeConfig(engine="int4")
    with pytest.raises(RnnkitError, match="port must be in"):
        ServeConfig(port=70000)
    with pytest.raises(RnnkitError, match="max_length must be >= 1"):
        ServeConfig(max_length=0)
    monkeypatch.setitem(sys.modules, "fastapi", None)
    with pytest.raises(RnnkitError, match=r"needs the fastapi package: pip install 'rnnkit\["):
        create_app(run)


def test_the_int8_engine_serves_too(run):
    client = TestClient(create_app(run, ServeConfig(engine="int8")))
    assert client.get("/api/info").json()["engine"] == "int8"
    assert client.post("/api/predict", json={"text": "the c"}).json()["suggestions"]


# ---- a real server ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(run):
    """uvicorn serving the run on a free localhost port, in a thread: its base URL."""
    config = ServeConfig(port=0, **LIMITS)
    sock = bind(config)
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(run, config), log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        for _ in range(200):
            if server.started:
                break
            thread.join(0.05)
        assert server.started, "uvicorn did not start"
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def test_concurrent_requests_get_the_answers_of_serial_ones(server, gen):
    texts = ["the ", "a c", "the big r", "on the m", "", "red h"] * 4
    expected = {t: [[w, p] for w, p in gen.suggest(t, 3)] for t in set(texts)}
    with httpx.Client(base_url=server, timeout=30) as http:

        def ask(text):
            r = http.post("/api/predict", json={"text": text, "top": 3})
            return [[s["text"], s["probability"]] for s in r.json()["suggestions"]]

        with ThreadPoolExecutor(6) as pool:
            answers = list(pool.map(ask, texts))
    for text, got in zip(texts, answers, strict=True):
        assert got == expected[text]


def test_the_address_in_use_is_a_one_line_error(server):
    port = int(server.rsplit(":", 1)[1])
    with pytest.raises(RnnkitError, match=f"cannot listen on 127.0.0.1:{port}"):
        bind(ServeConfig(port=port))


# ---- the page in a browser --------------------------------------------------------------------

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=900,700",
]


@pytest.fixture(scope="module")
def browser():
    if not (CHROMIUM.exists() and Path(CHROMEDRIVER).exists()):
        pytest.skip("needs Chromium: apt-get install chromium chromium-driver")
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    profile = tempfile.mkdtemp(prefix="rnnkit-chromium-")
    for flag in [*CHROMIUM_FLAGS, f"--user-data-dir={profile}"]:
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def suggestions_for(driver, text: str, timeout: float = 20) -> list[str]:
    """Wait until the page shows the suggestions for ``text``; their texts."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    box = driver.find_element(By.ID, "suggestions")
    WebDriverWait(driver, timeout).until(lambda d: box.get_attribute("data-for") == text)
    return [b.get_attribute("data-text") for b in box.find_elements(By.CLASS_NAME, "suggestion")]


def test_the_page_suggests_as_you_type_and_continues(server, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(server + "/")
    box = browser.find_element(By.ID, "text")
    box.send_keys("the big r")
    shown = suggestions_for(browser, "the big r")
    api = httpx.post(server + "/api/predict", json={"text": "the big r", "top": 3}).json()
    assert shown == [s["text"] for s in api["suggestions"]] and shown
    assert all(w.startswith("r") for w in shown)

    box.send_keys(Keys.TAB)  # takes the first suggestion, and a space
    taken = box.get_attribute("value")
    assert taken == f"the big {shown[0]} "

    clicked = suggestions_for(browser, taken)[1]  # the next word's, after the space
    browser.find_elements(By.CLASS_NAME, "suggestion")[1].click()
    assert box.get_attribute("value") == f"{taken}{clicked} "

    before = box.get_attribute("value")
    browser.find_element(By.ID, "continue").click()
    WebDriverWait(browser, 20).until(lambda d: len(box.get_attribute("value")) > len(before))
    assert box.get_attribute("value").startswith(before)
    assert browser.find_element(By.ID, "status").text == ""


def test_the_page_shows_a_bad_character_as_one_line(server, browser):
    from selenium.webdriver.common.by import By

    browser.get(server + "/")
    box = browser.find_element(By.ID, "text")
    box.send_keys("the #")
    assert suggestions_for(browser, "the #") == []
    status = browser.find_element(By.ID, "status").text
    assert "'#'" in status and "\n" not in status
