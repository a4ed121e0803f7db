"""HTTP teachers (issue 32): a redirect is refused, never followed (the key stays with its endpoint, and a POST turned
GET cannot answer for the prompt), and an answer that is not one to the request sent is an error, never scores.
Pure-Python servers on loopback addresses, in threads."""

import contextlib
import http.server
import json
import os
import threading

import numpy as np
import pytest

from irdistill.cli import main
from irdistill.errors import InputError
from irdistill.models.llm import OpenAIEndpoint

CHAT = [[{"role": "user", "content": "Is this passage relevant? Answer Yes or No."}]]
GOOD = {"choices": [{"index": 0, "message": {"role": "assistant", "content": "Yes"}, "finish_reason": "length",
                     "logprobs": {"content": [{"token": "Yes", "logprob": -0.1, "top_logprobs": [
                         {"token": "Yes", "logprob": -0.1}, {"token": "No", "logprob": -2.4}]}]}}]}


class Recorder(http.server.BaseHTTPRequestHandler):
    """Records every request (method, path, headers, body) and answers with the server's ``reply``."""

    def answer(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.seen.append((self.command, self.path, dict(self.headers), body))
        code, headers, payload = self.server.reply
        self.send_response(code)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = answer

    def log_message(self, *args):
        pass


@contextlib.contextmanager
def serve(host: str, reply=(200, {}, json.dumps(GOOD).encode())):
    server = http.server.ThreadingHTTPServer((host, 0), Recorder)
    server.seen, server.reply = [], reply
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@contextlib.contextmanager
def elsewhere():
    """A server on another loopback host (127.0.0.2, or ``localhost`` where that cannot be bound) and its URL."""
    try:
        with serve("127.0.0.2") as other:
            yield other, f"http://127.0.0.2:{other.server_address[1]}"
    except OSError:
        with serve("127.0.0.1") as other:
            yield other, f"http://localhost:{other.server_address[1]}"


@contextlib.contextmanager
def redirecting(code: int):
    """An endpoint on 127.0.0.1 that answers every request with a ``code`` redirect to a server elsewhere (which
    would answer well, so that a followed redirect gives scores)."""
    with elsewhere() as (other, url):
        with serve("127.0.0.1", (code, {"Location": url + "/v1/chat/completions"}, b"")) as first:
            yield first, other, url


@pytest.mark.parametrize("code", [301, 302, 303, 307, 308])
def test_a_redirect_is_refused_and_the_key_stays_home(code):
    with redirecting(code) as (first, other, url):
        lm = OpenAIEndpoint(f"http://127.0.0.1:{first.server_address[1]}/v1", "m", api_key="sk-secret")
        with pytest.raises(InputError) as err:
            lm.label_logprobs(CHAT, ["Yes", "No"])
        with pytest.raises(InputError):
            lm.generate(CHAT, 5)
    message = str(err.value)
    assert len(message.splitlines()) == 1 and f"redirects ({code}) to {url}/v1/chat/completions" in message
    assert f"127.0.0.1:{first.server_address[1]}" in message and "sk-secret" not in message
    assert first.seen and first.seen[0][2].get("Authorization") == "Bearer sk-secret"  # it went where it belongs
    assert other.seen == []  # and nowhere else: the redirect was not followed


def test_a_redirected_teacher_scores_nothing(capsys, beir_dir, tmp_path):
    (tmp_path / "run.trec").write_text("q1 Q0 d1 1 0.5 x\nq1 Q0 d2 2 0.4 x\n")
    with redirecting(302) as (first, other, _):
        code = main(["score", "--teacher", "llm-pointwise:m", "--option",
                     f"endpoint=http://user:pass@127.0.0.1:{first.server_address[1]}/v1", "--option", "api_key=sk-secret",
                     "--run", str(tmp_path / "run.trec"), "--dataset", beir_dir, "--cache", str(tmp_path / "cache")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "redirects (302)" in err, err
    assert "sk-secret" not in err and "pass" not in err
    assert other.seen == []
    assert not [f for f in os.listdir(tmp_path / "cache") if f.startswith("teacher=")]


@pytest.mark.parametrize("body,words", [
    (b"<html>moved</html>", "failed"),
    (b"[1, 2]", "not a JSON object"),
    (b"{}", "expected 'choices'"),
    (b'{"choices": []}', "expected 'choices'"),
    (json.dumps({"choices": GOOD["choices"] * 2}).encode(), "expected 'choices'"),  # two answers to one request
    (b'{"choices": [{"message": {"content": "Yes"}}]}', "no logprobs"),  # an answer to a request without logprobs
    (b'{"choices": [{"logprobs": null}]}', "no logprobs"),
    (b'{"choices": [{"logprobs": {"content": [{"token": "Yes"}]}}]}', "malformed top_logprobs"),
    (b'{"choices": [{"logprobs": {"content": [{"top_logprobs": [{"token": "Yes", "logprob": "high"}]}]}}]}',
     "malformed top_logprobs"),
    (b'{"choices": [{"logprobs": {"content": [{"top_logprobs": [{"token": "Yes", "logprob": NaN}]}]}}]}',
     "malformed top_logprobs"),
])
def test_an_answer_to_another_request_is_an_error(body, words):
    with serve("127.0.0.1", (200, {"Content-Type": "application/json"}, body)) as server:
        lm = OpenAIEndpoint(f"http://127.0.0.1:{server.server_address[1]}/v1", "m")
        with pytest.raises(InputError, match=words) as err:
            lm.label_logprobs(CHAT, ["Yes", "No"])
    assert f"LLM endpoint http://127.0.0.1:{server.server_address[1]}/v1/chat/completions" in str(err.value)


@pytest.mark.parametrize("body", [b'{"choices": [{"logprobs": {}}]}', b'{"choices": [{"message": null}]}',
                                  b'{"choices": [{"message": {"content": 3}}]}'])
def test_generate_needs_a_message_in_each_choice(body):
    with serve("127.0.0.1", (200, {}, body)) as server:
        lm = OpenAIEndpoint(f"http://127.0.0.1:{server.server_address[1]}/v1", "m")
        with pytest.raises(InputError, match="without a message"):
            lm.generate(CHAT, 5)


def test_a_malformed_answer_leaves_no_scores(capsys, beir_dir, tmp_path):
    (tmp_path / "run.trec").write_text("q1 Q0 d1 1 0.5 x\n")
    with serve("127.0.0.1", (200, {}, b'{"choices": [{"message": {"content": "Yes"}, "logprobs": null}]}')) as server:
        code = main(["score", "--teacher", "llm-pointwise:m", "--option",
                     f"endpoint=http://127.0.0.1:{server.server_address[1]}/v1", "--run", str(tmp_path / "run.trec"),
                     "--dataset", beir_dir, "--cache", str(tmp_path / "cache")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "no logprobs" in err, err
    assert not [f for f in os.listdir(tmp_path / "cache") if f.startswith("teacher=")]


def test_a_good_answer_still_scores():
    with serve("127.0.0.1") as server:
        lm = OpenAIEndpoint(f"http://127.0.0.1:{server.server_address[1]}/v1", "m")
        scores = lm.label_logprobs(CHAT * 2, ["Yes", "No"])
        assert lm.generate(CHAT, 5) == ["Yes"]
    assert np.allclose(scores, [[-0.1, -2.4]] * 2)
    sent = json.loads(server.seen[0][3])
    assert server.seen[0][0] == "POST" and sent["logprobs"] is True and sent["messages"] == CHAT[0]

    empty = {"choices": [{"message": {"content": ""}, "logprobs": {"content": []}}]}  # the answer ended at once
    with serve("127.0.0.1", (200, {}, json.dumps(empty).encode())) as server:
        lm = OpenAIEndpoint(f"http://127.0.0.1:{server.server_address[1]}/v1", "m")
        assert (lm.label_logprobs(CHAT, ["Yes", "No"]) == 0).all()
