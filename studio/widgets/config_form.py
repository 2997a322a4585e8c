"""A settings form generated from a config dataclass: one editor per field, labelled in words, tooltips
from its docstrings.

The engine names each field with a ``label`` in its metadata and documents it with a string literal
right under it (see TrainConfig and each family's Config); :func:`field_label` and :func:`field_docs`
read those, so the form never repeats them.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import textwrap
import types
import typing
from typing import Any

from PySide6.QtCore import QLocale, Signal
from PySide6.QtGui import QDoubleValidator
from PySide6.QtWidgets import QCheckBox, QComboBox, QFormLayout, QHBoxLayout, QLabel, QLineEdit, QSpinBox, QWidget

INT_LIMIT = 2**31 - 1


def field_docs(config_cls: type) -> dict[str, str]:
    """{field name: docstring} for a dataclass whose fields each have a string literal under them."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(config_cls)))
    except (OSError, TypeError, SyntaxError):
        return {}
    body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
    docs = {}
    for node, after in zip(body, body[1:], strict=False):
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and _is_string(after):
            docs[node.target.id] = inspect.cleandoc(after.value.value)  # type: ignore[attr-defined]
    return docs


def _is_string(node: ast.stmt) -> bool:
    return isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)


def field_default(field: dataclasses.Field) -> Any:
    """The default value of a dataclass field (dataclasses.MISSING when it has none)."""
    if field.default is not dataclasses.MISSING:
        return field.default
    if field.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        return field.default_factory()  # type: ignore[misc]
    return dataclasses.MISSING


def split_optional(annotation: Any) -> tuple[Any, bool]:
    """(inner type, optional?) for ``X | None`` / ``Optional[X]``; (annotation, False) otherwise."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1 and len(typing.get_args(annotation)) == 2:
            return args[0], True
    return annotation, False


def humanize(name: str) -> str:
    """``ema_half_life_kimg`` -> ``Ema half life kimg``: the fallback for a field without a label."""
    return name.replace("_", " ").capitalize()


def field_label(field: dataclasses.Field) -> str:
    """What the user sees for a setting: its ``label`` metadata, else its name in words."""
    label = field.metadata.get("label")
    return str(label) if label else humanize(field.name)


def field_labels(config_cls: type) -> dict[str, str]:
    """{field name: label} for every field of a config dataclass."""
    return {f.name: field_label(f) for f in dataclasses.fields(config_cls)}


# -- editors ----------------------------------------------------------------------------------------
class FieldEditor(QWidget):
    """Base editor: ``value()``, ``set_value()`` and ``sig_changed``."""

    sig_changed = Signal()
    """The user changed the value."""

    def value(self) -> Any:
        """The current value."""
        raise NotImplementedError  # abstract hook: Qt's metaclass cannot mix with ABCMeta

    def set_value(self, value: Any) -> None:
        """Show ``value``."""
        raise NotImplementedError  # abstract hook: Qt's metaclass cannot mix with ABCMeta


class BoolEditor(FieldEditor):
    """A check box."""

    def __init__(self) -> None:
        super().__init__()
        self.box = QCheckBox()
        _single(self, self.box)
        self.box.toggled.connect(self.sig_changed)

    def value(self) -> bool:
        return self.box.isChecked()

    def set_value(self, value: Any) -> None:
        self.box.setChecked(bool(value))


class TriStateEditor(FieldEditor):
    """Auto / On / Off for ``bool | None`` (None means the engine decides)."""

    CHOICES = (("Auto", None), ("On", True), ("Off", False))

    def __init__(self) -> None:
        super().__init__()
        self.combo = QComboBox()
        for label, _ in self.CHOICES:
            self.combo.addItem(label)
        _single(self, self.combo)
        self.combo.currentIndexChanged.connect(self.sig_changed)

    def value(self) -> bool | None:
        return self.CHOICES[self.combo.currentIndex()][1]

    def set_value(self, value: Any) -> None:
        self.combo.setCurrentIndex([v for _, v in self.CHOICES].index(value if value is None else bool(value)))


class IntEditor(FieldEditor):
    """A spin box for whole numbers."""

    def __init__(self) -> None:
        super().__init__()
        self.spin = QSpinBox()
        self.spin.setRange(-INT_LIMIT, INT_LIMIT)
        _single(self, self.spin)
        self.spin.valueChanged.connect(self.sig_changed)

    def value(self) -> int:
        return self.spin.value()

    def set_value(self, value: Any) -> None:
        self.spin.setValue(int(value))


class FloatEditor(FieldEditor):
    """A text field for real numbers (accepts 2e-4 style)."""

    def __init__(self) -> None:
        super().__init__()
        self.edit = QLineEdit()
        validator = QDoubleValidator(self.edit)
        validator.setLocale(QLocale.c())  # the engine reads 2e-4 and 0.5, whatever the user's locale
        self.edit.setValidator(validator)
        _single(self, self.edit)
        self.edit.textEdited.connect(self.sig_changed)

    def value(self) -> float:
        try:
            return float(self.edit.text())
        except ValueError:
            return 0.0

    def set_value(self, value: Any) -> None:
        self.edit.setText(f"{float(value):g}")


class TextEditor(FieldEditor):
    """A text field."""

    def __init__(self) -> None:
        super().__init__()
        self.edit = QLineEdit()
        _single(self, self.edit)
        self.edit.textEdited.connect(self.sig_changed)

    def value(self) -> str:
        return self.edit.text()

    def set_value(self, value: Any) -> None:
        self.edit.setText(str(value))


class ChoiceEditor(FieldEditor):
    """A drop-down for a ``Literal[...]`` field: only the values the engine accepts can be chosen."""

    def __init__(self, choices: tuple[Any, ...]) -> None:
        super().__init__()
        self.combo = QComboBox()
        for choice in choices:
            self.combo.addItem(str(choice), choice)
        _single(self, self.combo)
        self.combo.currentIndexChanged.connect(lambda _: self.sig_changed.emit())

    def value(self) -> Any:
        return self.combo.currentData()

    def set_value(self, value: Any) -> None:
        index = self.combo.findData(value)
        if index >= 0:
            self.combo.setCurrentIndex(index)


class OptionalEditor(FieldEditor):
    """A check box that turns a value on, beside that value's editor; unchecked means None."""

    def __init__(self, inner: FieldEditor, none_text: str = "none") -> None:
        super().__init__()
        self.inner = inner
        self.enabled = QCheckBox()
        self.enabled.setToolTip(f"Unchecked: {none_text}")
        self.none_label = QLabel(none_text)
        self.none_label.setObjectName("Muted")
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.enabled)
        row.addWidget(inner, 1)
        row.addWidget(self.none_label, 1)
        self.enabled.toggled.connect(self._toggled)
        inner.sig_changed.connect(self.sig_changed)
        self._toggled(False)

    def _toggled(self, on: bool) -> None:
        self.inner.setVisible(on)
        self.none_label.setVisible(not on)
        self.sig_changed.emit()

    def value(self) -> Any:
        return self.inner.value() if self.enabled.isChecked() else None

    def set_value(self, value: Any) -> None:
        if value is not None:
            self.inner.set_value(value)
        self.enabled.setChecked(value is not None)


def _single(editor: QWidget, child: QWidget) -> None:
    layout = QHBoxLayout(editor)
    layout.setContentsMargins(0, 0, 0, 0)
    layout.addWidget(child)


_EDITORS: dict[Any, type[FieldEditor]] = {bool: BoolEditor, int: IntEditor, float: FloatEditor, str: TextEditor}


def make_editor(annotation: Any) -> FieldEditor | None:
    """The editor for a field's type; None for types the form does not edit (dicts, lists)."""
    inner, optional = split_optional(annotation)
    if optional and inner is bool:
        return TriStateEditor()
    if typing.get_origin(inner) is typing.Literal:
        return ChoiceEditor(typing.get_args(inner))
    editor_cls = _EDITORS.get(inner)
    if editor_cls is None:
        return None
    return OptionalEditor(editor_cls()) if optional else editor_cls()


# -- the form -------------------------------------------------------------------------------------
class ConfigForm(QWidget):
    """Editors for the fields of ``config_cls`` (minus ``exclude``), labelled and with docstring tooltips."""

    sig_changed = Signal()
    """The user changed any value in the form."""

    def __init__(self, config_cls: type, exclude: tuple[str, ...] = (), parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.config_cls = config_cls
        self.docs = field_docs(config_cls)
        self.editors: dict[str, FieldEditor] = {}
        self.defaults: dict[str, Any] = {}
        self.labels: dict[str, QLabel] = {}
        self.layout_ = QFormLayout(self)
        self.layout_.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        hints = typing.get_type_hints(config_cls)
        for field in dataclasses.fields(config_cls):
            if field.name not in exclude:
                self._add_field(field, hints.get(field.name, str))

    def _add_field(self, field: dataclasses.Field, annotation: Any) -> None:
        editor = make_editor(annotation)
        default = field_default(field)
        if editor is None or default is dataclasses.MISSING:
            return
        editor.set_value(default)
        tip = f"{self.docs.get(field.name, '')}\n\n{field.name} (default: {default!r})".strip()
        label = QLabel(field_label(field))
        for widget in (label, editor):
            widget.setToolTip(tip)
        editor.sig_changed.connect(self.sig_changed)
        self.layout_.addRow(label, editor)
        self.editors[field.name], self.defaults[field.name], self.labels[field.name] = editor, default, label

    def values(self) -> dict[str, Any]:
        """{field: value} for every edited field."""
        return {name: editor.value() for name, editor in self.editors.items()}

    def changed_values(self) -> dict[str, Any]:
        """Only the fields whose value differs from the dataclass default."""
        return {k: v for k, v in self.values().items() if v != self.defaults[k]}

    def set_values(self, values: dict[str, Any]) -> None:
        """Show these values (keys the form has no editor for are ignored)."""
        for name, value in values.items():
            if name in self.editors:
                self.editors[name].set_value(value)

    def reset(self) -> None:
        """Back to the dataclass defaults."""
        self.set_values(self.defaults)
