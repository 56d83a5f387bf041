"""The one formatting of a rate and its interval, used by every text, table, markdown and plot label."""

from __future__ import annotations

from devloop.stats import RateEstimate, interval_text, methods_note, rate_text, resolve_rate


def test_interval_text_forms() -> None:
    assert interval_text(0.425, 0.285, 0.578) == "42.5% (28.5..57.8)"
    assert (
        interval_text(0.425, 0.285, 0.578, conf=0.95, method="wilson") == "42.5% (95% Wilson CI 28.5..57.8)"
    )
    assert (
        interval_text(0.5, 0.2, 0.8, conf=0.9, method="bootstrap", n=12)
        == "50.0% (90% bootstrap CI 20.0..80.0, n=12)"
    )
    assert interval_text(0.5, 0.2, 0.8, conf=0.95) == "50.0% (95% CI 20.0..80.0)"
    diff = interval_text(
        0.175, 0.075, 0.3, conf=0.95, method="paired_bootstrap_percentile", signed=True, unit=" pts"
    )
    assert diff == "+17.5 pts (95% paired bootstrap CI +7.5..+30.0)"
    assert interval_text(-0.1, -0.2, 0.05, signed=True, unit=" pts") == "-10.0 pts (-20.0..+5.0)"


def test_rate_text_takes_an_estimate_or_its_dict() -> None:
    est = resolve_rate(5, 10)
    assert rate_text(est) == rate_text(est.to_dict()) == "50.0% (95% Wilson CI 23.7..76.3)"
    assert rate_text(est, label=False) == est.short() == "50.0% (23.7..76.3)"
    assert rate_text(est, n=True) == str(est) == "50.0% (95% Wilson CI 23.7..76.3, n=10)"
    boot = RateEstimate(0.4, 0.3, 0.5, n=20, method="bootstrap")
    assert rate_text(boot.to_dict()) == "40.0% (95% bootstrap CI 30.0..50.0)"
    assert rate_text(None) == rate_text({}) == "n/a"


def test_methods_note_names_one_method_or_the_rule() -> None:
    wilson = resolve_rate(1, 2).to_dict()
    boot = RateEstimate(0.4, 0.3, 0.5, n=20, method="bootstrap").to_dict()
    assert methods_note([wilson, None, wilson]) == "95% Wilson CI"
    assert methods_note([boot]) == "95% bootstrap CI over tasks"
    mixed = methods_note([wilson, boot])
    assert "Wilson" in mixed and "bootstrap" in mixed and "0/1" in mixed
    assert methods_note([]) == "95% CI"
