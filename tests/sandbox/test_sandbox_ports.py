"""The in-process sandbox keeps its port in the JOBDIR: a resumed crawl requests the same URLs."""

import logging
import socket

from scrapy.utils.test import get_crawler

from scrapy_apigw.gateway import Gateway
from scrapy_apigw.sandbox.ports import PORT_FILE, sandbox_port


def test_a_job_gets_the_same_port_on_every_run(tmp_path):
    jobdir = tmp_path / "job"  # not created yet: Scrapy creates it later in the crawl
    first = sandbox_port(jobdir)
    assert (jobdir / PORT_FILE).read_text("ascii") == f"{first}\n"
    assert sandbox_port(jobdir) == first
    assert sandbox_port(str(jobdir)) == first


def test_a_taken_port_is_replaced_with_a_warning_and_saved(tmp_path, caplog):
    first = sandbox_port(tmp_path)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as other:
        other.bind(("127.0.0.1", first))
        other.listen()
        with caplog.at_level(logging.WARNING, logger="scrapy_apigw.sandbox.ports"):
            second = sandbox_port(tmp_path)
    assert second != first
    assert (tmp_path / PORT_FILE).read_text("ascii") == f"{second}\n"
    assert [r.getMessage() for r in caplog.records] == [
        f"apigw: port {first} of this job's sandbox (saved in {tmp_path / PORT_FILE}) is taken: "
        "the sandbox uses another one, so its URLs change and the resumed crawl requests its "
        "pages again"
    ]


def test_an_unreadable_port_file_is_replaced(tmp_path):
    (tmp_path / PORT_FILE).write_text("not a port")
    port = sandbox_port(tmp_path)
    assert (tmp_path / PORT_FILE).read_text("ascii") == f"{port}\n"


def test_the_gateway_serves_the_sandbox_on_the_jobs_port(tmp_path):
    settings = {"APIGW_SANDBOX": True, "JOBDIR": str(tmp_path)}
    first = Gateway.for_crawler(get_crawler(settings_dict=settings)).sandbox_url
    again = Gateway.for_crawler(get_crawler(settings_dict=settings)).sandbox_url
    port = int((tmp_path / PORT_FILE).read_text("ascii"))
    assert first == again == f"http://127.0.0.1:{port}"
    # APIGW_SANDBOX_PORT still wins.
    fixed = {"APIGW_SANDBOX": True, "JOBDIR": str(tmp_path), "APIGW_SANDBOX_PORT": 1}
    assert Gateway.for_crawler(get_crawler(settings_dict=fixed)).sandbox_url == (
        "http://127.0.0.1:1"
    )
