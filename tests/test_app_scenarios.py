"""AppTest: a scenario runs as a background job like a profile: live progress, Cancel, stored
only when it completes."""

from __future__ import annotations

from helpers import assert_short_numbers, click_run, scenarios_page, wait_finished

from profiling.storage.store import Store


def test_a_scenario_shows_progress_and_cancel_stops_it_storing_nothing(data_dir):
    at = scenarios_page()
    at.multiselect(key="sc_variants").set_value(["nn_relu", "maximum", "where"])
    at.number_input(key="sc_channels").set_value(4)
    at.number_input(key="sc_repeats").set_value(20)
    at.number_input(key="sc_train_steps").set_value(20)
    at.button(key="sc_run").click().run()
    assert not at.exception
    assert at.button(key="sc_run").disabled  # one scenario at a time
    assert at.get("status") or at.get("progress")
    at.button(key="sc_cancel").click().run()
    wait_finished(at)
    job = at.session_state["sc_job"]
    assert job.cancelled and job.done < job.total
    assert any("Cancelled" in w.value for w in at.warning)
    assert not at.get("plotly_chart")
    with Store(data_dir) as store:
        assert store.list_runs().empty


def test_a_finished_scenario_is_stored_and_the_page_can_run_again(data_dir):
    at = scenarios_page()
    at.multiselect(key="sc_variants").set_value(["nn_relu"])
    at.number_input(key="sc_channels").set_value(4)
    at.number_input(key="sc_repeats").set_value(1)
    at.number_input(key="sc_train_steps").set_value(2)
    click_run(at)
    assert not at.exception and not at.error
    assert any("Saved as run" in s.value for s in at.success)
    assert not at.button(key="sc_run").disabled
    table = at.dataframe[0].value  # in the chart's unit (ms), short numbers
    assert {"train step (ms)", "train 95% CI", "fused sites"} <= set(table.columns)
    assert not [c for c in table.columns if "ci95" in c]
    assert_short_numbers(at)
    with Store(data_dir) as store:
        assert len(store.list_runs()) == 1
