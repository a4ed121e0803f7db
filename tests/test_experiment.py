from irdistill.experiment import resumable_rows, write_section


def test_write_section_replaces_only_its_block(tmp_path):
    doc = tmp_path / "doc.md"
    doc.write_text("# Title\n\n<!-- a -->\nold\n<!-- /a -->\n\ntail\n")
    write_section(doc, "a", "new table")
    write_section(doc, "b", "appended")
    assert doc.read_text() == "# Title\n\n<!-- a -->\nnew table\n<!-- /a -->\n\ntail\n\n<!-- b -->\nappended\n<!-- /b -->\n"


def test_resumable_rows_skip_finished_rows_and_rerun_changed_configs(tmp_path):
    calls = []
    run = lambda row: calls.append(row) or {"value": row}
    assert resumable_rows(["a", "b"], ["a"], tmp_path, run, {"a": 1, "b": 1}) == [{"value": "a", "config": 1}]
    resumable_rows(["a", "b"], ["a", "b"], tmp_path, run, {"a": 1, "b": 1})
    resumable_rows(["a", "b"], ["a", "b"], tmp_path, run, {"a": 2, "b": 1})
    assert calls == ["a", "b", "a"]
