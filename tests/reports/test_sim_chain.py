"""`pos-loyalty sim chain`: a deterministic synthetic chain, written in bulk."""

from __future__ import annotations

from click.testing import CliRunner
from sqlalchemy import func, select

from pos_loyalty.cli import main
from pos_loyalty.insight.chain import ChainSpec, generate
from pos_loyalty.server.central import CentralStore
from pos_loyalty.store.central_models import SaleLine, SaleRecord


def _all(spec: ChainSpec) -> dict[str, list[tuple[object, ...]]]:
    out: dict[str, list[tuple[object, ...]]] = {}
    for rows in generate(spec, batch_sales=100):
        for table, got in rows.items():
            out.setdefault(table, []).extend(got)
    return out


class TestGenerator:
    def test_same_seed_same_chain_other_seed_other_chain(self) -> None:
        spec = ChainSpec(stores=2, members=60, days=90, seed=7)
        a, b = _all(spec), _all(spec)
        assert a == b
        assert _all(ChainSpec(stores=2, members=60, days=90, seed=8))["sales"] != a["sales"]

    def test_histories_have_the_shapes_reports_need(self) -> None:
        """Every habit shows up: one-off members, regulars, refunds, redemptions, answers
        and taps; sales fall inside the period and balances equal the ledger."""
        rows = _all(ChainSpec(stores=3, members=300, days=365, seed=3))
        sales = rows["sales"]
        per_member: dict[object, int] = {}
        for s in sales:
            if s[3] == "sale" and s[7] is not None:
                per_member[s[7]] = per_member.get(s[7], 0) + 1
        assert min(per_member.values()) == 1 and max(per_member.values()) >= 20
        assert any(s[3] == "refund" for s in sales)
        assert any(s[15] for s in sales)  # points redeemed
        assert any(s[7] is None for s in sales)  # anonymous sales
        assert rows["visit_answers"] and rows["phone_taps"] and rows["phone_nps"]
        ledger: dict[object, int] = {}
        for e in rows["ledger_events"]:
            ledger[e[0]] = ledger.get(e[0], 0) + int(e[6])  # type: ignore[call-overload]
        assert {m: b for m, b, _ in rows["balances"] if b} == {
            m: p for m, p in ledger.items() if p}


def test_sim_chain_command_writes_the_chain(central_url: str) -> None:
    """The command fills an empty central database (COPY on PostgreSQL, executemany on
    SQLite) and refuses one that holds data."""
    args = ["sim", "chain", "--stores", "2", "--members", "40", "--days", "60", "--seed",
            "5", "--db", central_url]
    out = CliRunner().invoke(main, args)
    assert out.exit_code == 0, out.output
    expected = _all(ChainSpec(stores=2, members=40, days=60, seed=5))
    store = CentralStore(central_url)
    with store.read() as conn:
        n_sales = conn.execute(select(func.count()).select_from(SaleRecord)).scalar_one()
        n_lines = conn.execute(select(func.count()).select_from(SaleLine)).scalar_one()
    assert (n_sales, n_lines) == (len(expected["sales"]), len(expected["sale_lines"]))
    assert store.integrity() == []
    store.close()
    again = CliRunner().invoke(main, args)
    assert again.exit_code == 1 and "empty central database" in again.output
