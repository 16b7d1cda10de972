"""ArtifactLayout: candidate ids stay unique when candidates follow each other quickly."""

from pathlib import Path

from sensequant_assets.artifacts import ArtifactLayout


def test_a_second_whose_candidate_exists_is_not_reused(tmp_path: Path) -> None:
    layout = ArtifactLayout(tmp_path)
    first = layout.new_candidate()
    first.root.mkdir(parents=True)
    second = layout.new_candidate_id()
    assert second > first.candidate_id and not (layout.models / second).exists()
    audit = layout.release / f"audit_{second}"  # a failed run leaves only its audit directory
    audit.mkdir(parents=True)
    assert layout.new_candidate_id() > second
