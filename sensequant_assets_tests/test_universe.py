from pathlib import Path

import pytest

from sensequant_assets.universe import (
    INDEX_SYMBOL,
    UnknownSymbolError,
    load_universe,
    scrip_master_codes,
)

MASTER_HEADER = (
    '"Token", "ShortName", "Series", "CompanyName", "ticksize", "Lotsize", "ExchangeCode"\n'
)


def test_default_universe_is_nifty100_plus_etfs() -> None:
    universe = load_universe()
    assert len(universe.default_symbols) == 102
    assert {"GOLDBEES", "SILVERBEES", "RELIANCE", "TCS"} <= set(universe.default_symbols)
    assert INDEX_SYMBOL not in universe.default_symbols
    assert universe.isec_code("reliance") == "RELIND"
    assert universe.isec_code("GOLDBEES") == "GOLDEX"
    assert universe.isec_code(INDEX_SYMBOL) == "NIFTY"
    assert universe.sector("TCS") == "Information Technology"


def test_unknown_symbol_lists_close_matches() -> None:
    with pytest.raises(UnknownSymbolError, match="did you mean RELIANCE"):
        load_universe().get("RELIANC")


def test_scrip_master_adds_symbols_and_keeps_eq_rows_only(tmp_path: Path) -> None:
    master = tmp_path / "NSEScripMaster.txt"
    master.write_text(
        MASTER_HEADER
        + '"2885","RELIND","EQ","RELIANCE INDUSTRIES LTD",0.05,1,"RELIANCE"\n'
        + '"9999","ACMNEW","EQ","ACME LTD",0.05,1,"ACME"\n'
        + '"9998","ACMDEB","N1","ACME LTD NCD",0.05,1,"ACME"\n'
    )
    assert scrip_master_codes(master) == {"RELIANCE": "RELIND", "ACME": "ACMNEW"}
    universe = load_universe(master)
    assert universe.isec_code("ACME") == "ACMNEW"
    assert universe.sector("RELIANCE") == "Oil Gas & Consumable Fuels"


def test_scrip_master_without_required_columns_is_rejected(tmp_path: Path) -> None:
    master = tmp_path / "bad.txt"
    master.write_text('"Token", "Series"\n"1","EQ"\n')
    with pytest.raises(ValueError, match="lacks column"):
        scrip_master_codes(master)
