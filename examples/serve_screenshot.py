"""The text-prediction page driven by a headless Chromium: type, take a suggestion, continue,
then save a screenshot (docs/serve.png is made this way).

    rnnkit lm train input.txt --out runs/shakespeare-small --hidden-size 256 --max-minutes 2
    python examples/serve_screenshot.py runs/shakespeare-small --out docs/serve.png

Needs the serve extra, selenium, and Debian's chromium + chromium-driver.
"""

import argparse
import shutil
import tempfile
import threading
import time

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

from rnnkit.serve import ServeConfig, bind, create_app

parser = argparse.ArgumentParser()
parser.add_argument("run", help="run or checkpoint directory")
parser.add_argument("--out", default="docs/serve.png")
parser.add_argument("--text", default="ROMEO:\nWhat light is in the wor")
parser.add_argument("--length", type=int, default=80, help="characters the continue button adds")
parser.add_argument("--temperature", type=float, default=0.5)
args = parser.parse_args()

import uvicorn  # noqa: E402

config = ServeConfig(port=0)
sock = bind(config)
server = uvicorn.Server(uvicorn.Config(create_app(args.run, config), log_level="warning"))
threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True).start()
while not server.started:
    time.sleep(0.05)

options = webdriver.ChromeOptions()
options.binary_location = "/usr/bin/chromium"
profile = tempfile.mkdtemp(prefix="rnnkit-chromium-")
for flag in (
    "--headless --no-sandbox --disable-gpu --disable-quic --no-first-run "
    "--disable-background-networking --disable-component-update --disable-sync "
    f"--window-size=900,640 --user-data-dir={profile}"
).split():
    options.add_argument(flag)
driver = webdriver.Chrome(options=options, service=Service(shutil.which("chromedriver")))
try:
    driver.get(f"http://127.0.0.1:{sock.getsockname()[1]}/")
    box = driver.find_element(By.ID, "text")
    suggestions = driver.find_element(By.ID, "suggestions")
    length = driver.find_element(By.ID, "length")
    length.clear()
    length.send_keys(str(args.length))
    driver.execute_script(  # a slider: set it as a drag would, with an input event
        "const t = document.getElementById('temperature'); t.value = arguments[0];"
        "t.dispatchEvent(new Event('input'));",
        args.temperature,
    )
    box.send_keys(args.text)
    WebDriverWait(driver, 30).until(lambda d: suggestions.get_attribute("data-for") == args.text)
    box.send_keys(Keys.TAB)  # take the first completion of the word being typed
    before = box.get_attribute("value")
    driver.find_element(By.ID, "continue").click()
    WebDriverWait(driver, 30).until(lambda d: len(box.get_attribute("value")) > len(before))
    if not box.get_attribute("value")[-1].isspace():
        box.send_keys(" ")  # suggestions for the next word
    text = box.get_attribute("value")
    WebDriverWait(driver, 30).until(lambda d: suggestions.get_attribute("data-for") == text)
    driver.save_screenshot(args.out)
    print(f"{args.out}: {text!r}")
finally:
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)
    server.should_exit = True
