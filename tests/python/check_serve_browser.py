#!/usr/bin/python3
"""`vaegan serve` in a real browser (Debian's chromium and chromedriver, driven by Selenium).

Trains a 2-epoch run on a generated MNIST-style dataset, starts `vaegan serve RUN --port 0`, opens
the page headless and checks, against the run's files: the loss chart holds one point per train
line of metrics.jsonl with the chosen metric; moving the interpolation slider (arrow keys, as a
user would) decodes another image; an uploaded PNG gets its reconstruction row (input,
reconstruction and 4 nearest training images, at the model's size); the epoch slider shows the
grid files of epoch 1 and 2. With --screenshots DIR it saves the dashboard and the explorer there
(docs/images/serve-*.png).

Usage: check_serve_browser.py VAEGAN_BINARY WORK_DIR [--screenshots DIR] [--run RUN] (a finished
run of 1-channel 32x32 images to serve instead, e.g. runs/demo for the docs' screenshots). Exits 77 (skipped) when
chromium, chromedriver or Selenium is missing.
"""
import argparse
import gzip
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import time


def write_idx(out, n_train=256, n_test=64):
    """Bright squares whose size is the class (as tests/test_util.h draws them)."""
    os.makedirs(out, exist_ok=True)
    for prefix, n, seed in (("train", n_train, 1), ("t10k", n_test, 2)):
        labels = bytes((i * 7 + seed) % 10 for i in range(n))
        images = bytearray(n * 28 * 28)
        for i, k in enumerate(labels):
            for y in range(12 - k, 16 + k):
                for x in range(12 - k, 16 + k):
                    images[i * 784 + y * 28 + x] = 200 + 5 * k
        with gzip.open(f"{out}/{prefix}-images-idx3-ubyte.gz", "wb") as f:
            f.write(struct.pack(">IIII", 2051, n, 28, 28) + bytes(images))
        with gzip.open(f"{out}/{prefix}-labels-idx1-ubyte.gz", "wb") as f:
            f.write(struct.pack(">II", 2049, n) + labels)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("vaegan")
    ap.add_argument("work")
    ap.add_argument("--screenshots", default="")
    ap.add_argument("--run", default="", help="serve this run (1 channel, 32x32) instead of training one")
    args = ap.parse_args()
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
        from selenium.webdriver.common.by import By
        from selenium.webdriver.common.keys import Keys
        from selenium.webdriver.support.ui import WebDriverWait
        from PIL import Image
    except ImportError as e:
        print(f"skipped: {e} (Debian's python3-selenium and python3-pil)")
        return 77
    if not chromium or not driver:
        print("skipped: chromium or chromedriver missing (Debian's chromium and chromium-driver)")
        return 77

    shutil.rmtree(args.work, ignore_errors=True)
    os.makedirs(args.work)
    data, run = f"{args.work}/data", args.run or f"{args.work}/run"
    if not args.run:
        write_idx(data)
        subprocess.run([args.vaegan, "train", "--dataset", "mnist", "--data-dir", data, "--out", run, "--epochs", "2",
                        "--batch-size", "32", "--log-every", "2", "--latent-dim", "16", "--grid-size", "16",
                        "--precision", "fp32", "--threads", "1"], check=True, capture_output=True)
    lines = [json.loads(l) for l in open(f"{run}/metrics.jsonl")]
    upload = f"{args.work}/upload.png"
    Image.new("L", (40, 40), 0).save(upload)  # a bright square on black, not the model's size
    img = Image.open(upload)
    img.paste(230, (10, 10, 30, 30))
    img.save(upload)

    log = open(f"{args.work}/serve.log", "w+")
    server = subprocess.Popen([args.vaegan, "serve", run, "--port", "0", "--threads", "1"], stderr=log, stdout=log)
    failures = []

    def check(ok, what):
        print(("ok: " if ok else "FAILED: ") + what)
        if not ok:
            failures.append(what)

    browser = None
    try:
        port = None
        for _ in range(200):
            log.seek(0)
            m = re.search(r"http://127\.0\.0\.1:(\d+)/", log.read())
            if m:
                port = int(m.group(1))
                break
            if server.poll() is not None:
                break
            time.sleep(0.1)
        if port is None:
            log.seek(0)
            print("FAILED: vaegan serve did not start:\n" + log.read())
            return 1
        options = webdriver.ChromeOptions()
        options.binary_location = chromium
        for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1800"):
            options.add_argument(flag)
        browser = webdriver.Chrome(service=Service(executable_path=driver), options=options)
        browser.get(f"http://127.0.0.1:{port}/")
        wait = WebDriverWait(browser, 60)
        loads = lambda el: int(browser.execute_script("return arguments[0].dataset.loads || 0", el))

        # the chart: one point per train line that has the selected metric
        wait.until(lambda b: b.execute_script("return window.vaeganChart.data.datasets.length") == 1)
        metric = browser.execute_script("return document.getElementById('metric').value")
        points = browser.execute_script("return window.vaeganChart.data.datasets[0].data")
        want = [{"x": l["step"], "y": l[metric]} for l in lines if l.get("split", "train") == "train" and metric in l]
        check(metric == "loss_dis", f"the chart shows loss_dis first (shows {metric})")
        check(len(want) > 0 and len(points) == len(want) and all(p["x"] == w["x"] and abs(p["y"] - w["y"]) < 1e-9 * max(1, abs(w["y"]))
                                               for p, w in zip(points, want)),
              f"the chart has the run's {len(want)} points of {metric} ({len(points)} shown)")
        drawn = lambda b: b.execute_script("return window.vaeganChart.getDatasetMeta(0).data.length")
        wait.until(lambda b: drawn(b) == len(want))
        check(True, f"the chart drew {len(want)} points")
        status = browser.find_element(By.ID, "status-0").text
        # a run given with --run may have stopped at its --max-minutes (make demo): interrupted
        check(status == "finished" or (args.run and status == "interrupted"), f"the run's status ({status})")

        # the epoch slider over the grid files
        grid = browser.find_element(By.ID, "grid-recon")
        wait.until(lambda b: b.execute_script("return arguments[0].complete && arguments[0].naturalWidth > 0", grid))
        epochs = sorted(int(m.group(1)) for m in (re.fullmatch(r"epoch-(\d+)-reconstructions\.png", f)
                                                  for f in os.listdir(f"{run}/images")) if m)
        check(grid.get_attribute("src").endswith(f"epoch-{epochs[-1]:03d}-reconstructions.png"),
              f"the grids open at the last epoch ({epochs[-1]})")
        slider = browser.find_element(By.ID, "grid-epoch")
        slider.click()
        slider.send_keys(Keys.HOME)
        wait.until(lambda b: grid.get_attribute("src").endswith(f"epoch-{epochs[0]:03d}-reconstructions.png"))
        check(True, f"the epoch slider shows epoch {epochs[0]}'s grid")

        # interpolation: the slider decodes another image
        interp = browser.find_element(By.ID, "interp-img")
        wait.until(lambda b: loads(interp) >= 1)
        pixels = lambda el: browser.execute_script(
            "const c = document.createElement('canvas'); c.width = arguments[0].naturalWidth;"
            "c.height = arguments[0].naturalHeight; c.getContext('2d').drawImage(arguments[0], 0, 0);"
            "return c.toDataURL();", el)
        wait.until(lambda b: b.execute_script("return arguments[0].complete", interp))
        before, n = pixels(interp), loads(interp)
        t_slider = browser.find_element(By.ID, "interp-t")
        t_slider.click()
        t_slider.send_keys(Keys.END)
        wait.until(lambda b: loads(interp) > n and b.execute_script("return arguments[0].complete", interp))
        time.sleep(0.5)  # the answers to the last key presses
        check(browser.find_element(By.ID, "t-label").text == "1.00", "the slider reached t = 1")
        check(pixels(interp) != before, "moving the interpolation slider changed the decoded image")
        if args.screenshots:
            os.makedirs(args.screenshots, exist_ok=True)
            browser.execute_script("window.scrollTo(0, 0)")
            browser.save_screenshot(f"{args.screenshots}/serve-dashboard.png")

        # upload: the reconstruction row appears, at the model's size (32) with 1-pixel padding
        recon = browser.find_element(By.ID, "recon-img")
        browser.find_element(By.ID, "upload").send_keys(upload)
        wait.until(lambda b: loads(recon) >= 1 and b.execute_script("return arguments[0].complete", recon))
        size = browser.execute_script("return [arguments[0].naturalWidth, arguments[0].naturalHeight]", recon)
        check(size == [6 * 33 + 1, 34], f"the upload's row: input, reconstruction, 4 neighbours ({size})")
        error = browser.find_element(By.ID, "error").text
        check(error == "", f"no error on the page ({error!r})")
        if args.screenshots:
            browser.execute_script("document.getElementById('explore-run').scrollIntoView()")
            browser.save_screenshot(f"{args.screenshots}/serve-explorer.png")
    finally:
        if browser:
            browser.quit()
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            failures.append("vaegan serve did not stop on SIGTERM")
    check(server.returncode == 0, f"vaegan serve exited 0 on SIGTERM ({server.returncode})")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
