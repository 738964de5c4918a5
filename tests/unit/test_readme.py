from pathlib import Path

from domain.settings import Settings

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def test_every_setting_is_documented_in_the_readme():
    missing = []
    for name, field in Settings.model_fields.items():
        names = field.validation_alias.choices if field.validation_alias else [f"BACKOFFICE_{name.upper()}"]  # type: ignore[union-attr]
        if not any(f"`{n}`" in README for n in names):
            missing.append(names[0])
    assert not missing, f"add to the README's configuration table: {missing}"
