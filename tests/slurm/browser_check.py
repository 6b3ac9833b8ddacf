"""Opens a server that tools/notebook started in headless Chromium (Debian's chromium and
chromium-driver, driven by python3-selenium) and checks what a person would see.

  browser_check.py jupyter URL SCREENSHOT_PREFIX
      Without the URL's token the browser gets the login form; with it JupyterLab's
      launcher appears; a notebook opened from it runs print(...) on the
      compute node's kernel and shows the printed line (with the kernel's SLURMD_NODENAME and
      SLURM_JOB_ID). Screenshots: PREFIX-login.png,
      PREFIX-launcher.png, PREFIX-notebook.png.
  browser_check.py tensorboard URL SCREENSHOT_PREFIX TAG [TAG ...]
      TensorBoard's scalars dashboard lists every TAG with a drawn curve. Screenshot:
      PREFIX-scalars.png.

Prints one line per check ("ok: ..."), exits 1 with "FAIL: ..." and a screenshot of the page as
it was (PREFIX-failure.png) when a check fails, 77 when no browser is installed.
"""
import os
import re
import shutil
import sys
import time
import urllib.parse

try:
    from selenium import webdriver
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.chrome.service import Service
except ImportError:
    print("SKIP: python3-selenium is not installed (env/debian.sh installs it)")
    sys.exit(77)

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
DRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"


class CheckFailed(Exception):
    pass


def browser():
    if not (os.access(CHROMIUM, os.X_OK) and os.access(DRIVER, os.X_OK)):
        print("SKIP: no chromium and chromedriver (env/debian.sh installs chromium and chromium-driver)")
        sys.exit(77)
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1400,900", "--no-first-run", "--disable-extensions"):
        options.add_argument(arg)
    return webdriver.Chrome(service=Service(DRIVER), options=options)


def wait_for(what, condition, timeout):
    """Polls condition() until it returns something true; raises CheckFailed naming `what`."""
    deadline = time.monotonic() + timeout
    last_error = None
    while time.monotonic() < deadline:
        try:
            value = condition()
            if value:
                return value
        except WebDriverException as error:  # the page is still being built
            last_error = error
        time.sleep(0.5)
    detail = f" (last error: {last_error.msg})" if last_error is not None else ""
    raise CheckFailed(f"{what} did not happen within {timeout} s{detail}")


def ok(message):
    print(f"ok: {message}", flush=True)


def check_jupyter(driver, url, prefix):
    # Without the token (someone else on the node who found the port) the browser gets
    # Jupyter's login form, not the lab.
    driver.get(urllib.parse.urlsplit(url)._replace(query="").geturl())
    wait_for("Jupyter's login form for a browser without the token",
             lambda: driver.find_elements(By.CSS_SELECTOR, "input[type=password]"), 60)
    if driver.find_elements(By.CSS_SELECTOR, ".jp-Launcher"):
        raise CheckFailed("the lab opened without the token")
    ok("without the token the browser gets the login form, not the lab")
    driver.save_screenshot(f"{prefix}-login.png")
    # "reset": a fresh workspace, not the tabs a previous session left open (JupyterLab keeps
    # them per user, in ~/.jupyter/lab/workspaces).
    parts = urllib.parse.urlsplit(url)
    driver.get(parts._replace(query="reset&" + parts.query if parts.query else "reset").geturl())
    wait_for("JupyterLab's launcher appearing", lambda: driver.find_elements(By.CSS_SELECTOR, ".jp-Launcher"), 90)
    card = wait_for("a Python notebook card in the launcher",
                    lambda: [c for c in driver.find_elements(By.CSS_SELECTOR, '.jp-LauncherCard[data-category="Notebook"]')
                             if "Python" in (c.get_attribute("title") or c.text)], 30)[0]
    ok(f"JupyterLab's launcher appears, with the notebook card '{card.text.strip()}'")
    driver.save_screenshot(f"{prefix}-launcher.png")
    card.click()
    editor = wait_for("a notebook with an editable cell",
                      lambda: driver.find_elements(By.CSS_SELECTOR, ".jp-NotebookPanel .jp-Cell .cm-content"), 60)[0]
    wait_for("the kernel becoming idle",
             lambda: driver.find_elements(By.CSS_SELECTOR, '.jp-Notebook-ExecutionIndicator[data-status="idle"]'), 90)
    ok("a notebook opened from it has a kernel, idle")
    editor.click()
    # The kernel inherits the job's environment: the node and job it runs in are Slurm's.
    editor.send_keys("import os; print('slurmlab kernel on', os.environ.get('SLURMD_NODENAME'), "
                     "'job', os.environ.get('SLURM_JOB_ID'), 6 * 7)")
    webdriver.ActionChains(driver).key_down(Keys.SHIFT).send_keys(Keys.ENTER).key_up(Keys.SHIFT).perform()
    output = wait_for("the cell's printed line",
                      lambda: [o.text for o in driver.find_elements(By.CSS_SELECTOR, ".jp-OutputArea-output")
                               if "slurmlab kernel on" in o.text], 60)[0]
    if not output.strip().endswith(" 42"):
        raise CheckFailed(f"the cell printed {output!r}, not a line ending in 42")
    ok(f"the kernel ran print(...): {output.strip()}")
    driver.save_screenshot(f"{prefix}-notebook.png")


def check_tensorboard(driver, url, prefix, tags):
    # TensorBoard 2.x's Time Series dashboard, filtered to the tags asked for so that their
    # cards are on screen (cards out of view are not drawn): one scalar-card per tag, with a
    # line chart and a data table whose rows are the runs at the selected step.
    tag_filter = urllib.parse.quote("^(" + "|".join(re.escape(t) for t in tags) + ")$")
    driver.get(f"{url.rstrip('/')}/?tagFilter={tag_filter}#timeseries")

    def cards():
        found = {}
        for card in driver.find_elements(By.CSS_SELECTOR, "scalar-card"):
            names = card.find_elements(By.CSS_SELECTOR, ".tag")
            if names:
                found["".join(names[0].get_attribute("textContent").split())] = card
        return found

    wait_for(f"scalar cards for {', '.join(tags)}", lambda: set(tags) <= set(cards()), 90)
    ok(f"the scalars dashboard has a card for each of {', '.join(tags)}")
    for tag in tags:
        def drawn(tag=tag):
            card = cards()[tag]
            canvases = [c for c in card.find_elements(By.CSS_SELECTOR, "line-chart canvas")
                        if c.size["width"] > 50 and c.size["height"] > 50]
            rows = [r.text.split() for r in card.find_elements(By.CSS_SELECTOR, "tb-data-table-content-row")]
            return canvases and rows and rows
        rows = wait_for(f"a curve with data rows in the card of {tag}", drawn, 60)
        ok(f"{tag} is drawn; its table reads {' / '.join(' '.join(r) for r in rows)}")
    time.sleep(1)
    driver.save_screenshot(f"{prefix}-scalars.png")


def main(argv):
    if len(argv) < 4 or argv[1] not in ("jupyter", "tensorboard") or (argv[1] == "tensorboard" and len(argv) < 5):
        print(__doc__, file=sys.stderr)
        return 2
    kind, url, prefix, tags = argv[1], argv[2], argv[3], argv[4:]
    driver = browser()
    try:
        if kind == "jupyter":
            check_jupyter(driver, url, prefix)
        else:
            check_tensorboard(driver, url, prefix, tags)
        print(f"screenshots: {prefix}-*.png")
        return 0
    except CheckFailed as failure:
        driver.save_screenshot(f"{prefix}-failure.png")
        print(f"FAIL: {failure}; the page as it was: {prefix}-failure.png")
        return 1
    finally:
        driver.quit()


if __name__ == "__main__":
    sys.exit(main(sys.argv))
