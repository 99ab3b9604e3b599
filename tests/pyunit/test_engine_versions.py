"""The run directory records the versions it ran with (walsim and PostgreSQL)."""

from walsim import __version__
from walsim.run.engine import versions as _versions
from walsim.pg.pgbin import PgBin


def test_versions_name_walsim_and_postgresql():
    versions = _versions(PgBin())
    assert versions["walsim"] == __version__
    assert "(PostgreSQL)" in versions["postgresql"], versions
