"""Train page: family, preset and advanced settings; start, pause, stop and resume runs; watch the
fixed-seed preview, loss curves, speed, ETA, augmentation and log live while the window stays responsive.
The training doctor's health strip and findings (with a button per suggested fix) sit above them, and
"Find good settings…" opens the tune dialog (studio/pages/tune_dialog.py).

All training happens in a TrainWorker on its own QThread. This page only stores what the worker sends
and redraws on timers: labels at most every ``ui_ms``, the chart and preview on their own timers.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from PySide6.QtCore import QCoreApplication, QSize, Qt, QThread, QTimer, Signal
from PySide6.QtGui import QFontDatabase, QGuiApplication, QIcon, QImage, QPixmap
from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QSplitter,
    QTabWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from engine.data import read_report
from engine.data.importer import FEW_IMAGES
from engine.device import select_device
from engine.distributed import format_command, torchrun_command
from engine.errors import ConfigError, GanStudioError, gui_message
from engine.families import family_names, get_family
from engine.fsutil import atomic_write_json
from engine.runs import TrainConfig, read_run_config
from engine.runs.checkpoint import checkpoint_step, list_checkpoints
from engine.runs.info import read_log, read_stats, run_info
from engine.runs.layout import preview_path, preview_steps
from engine.tasks import get_task
from engine.training import RunResult
from engine.training.health import DETECTOR_LABELS, Finding, Fix, read_health
from engine.training.planner import PLANNED_FIELDS, MemoryPlan, plan_memory
from studio.errors import ErrorReporter
from studio.pages.tune_dialog import TuneDialog
from studio.presets import DEFAULT_PRESET, PRESETS, describe_settings, device_tier, preferred_family, preset_settings
from studio.project import Project
from studio.runs import format_seconds
from studio.sysinfo import gpu_total_memory
from studio.widgets.config_form import ConfigForm, field_labels
from studio.widgets.consent_dialog import consent_status
from studio.widgets.health_strip import FindingsPanel, FixDialog, HealthStrip
from studio.widgets.loss_chart import LossChart
from studio.widgets.preview_view import PreviewView
from studio.workers.model_workers import PlanWorker
from studio.workers.process_train_worker import ProcessTrainWorker
from studio.workers.train_worker import TrainWorker

AnyTrainWorker = TrainWorker | ProcessTrainWorker

# TrainConfig fields the page sets itself rather than through the advanced form.
FORM_EXCLUDE = ("dataset", "family", "family_options", "format_version")
NOISE_ONLY_FIELDS = ("conditional", "class_balance", "kid_every")
"""TrainConfig settings that only mean something for noise-to-image families: hidden for an upscaler
(it learns no classes and is not scored by KID)."""
RUN_ROLE = Qt.ItemDataRole.UserRole + 1
LOG_LINES = 2000
FINDINGS_HEIGHT = 360
"""The most room the findings take above the live views at first (they scroll; the split can be dragged)."""
TUNE_TIP = (
    "Try short runs with different learning rates, loss, augmentation and R1, score each by KD, and fill "
    "these settings with the best"
)
SETTINGS_NAME = "settings.json"
"""The TrainConfig a multi-process run is started from (torchrun ... train --config RUN/settings.json)."""
PROCESSES_TIP = (
    "Processes to start on this machine, one per GPU (torchrun, NCCL). Without a GPU they share the CPU "
    "cores over gloo: a way to check a cluster set-up, not a faster run"
)
TUNE_TIP_TRANSLATE = "Finding settings scores models that draw images from noise (by KD); this family translates images"


class TrainPage(QWidget):
    """Configure, run and watch training runs of the current project."""

    sig_running_changed = Signal(bool)
    """A run started (True) or its thread ended (False)."""
    sig_run_finished = Signal(str)
    """A run ended with a checkpoint; carries the run folder."""
    sig_checkpoint_saved = Signal(str)
    """A running run wrote a checkpoint (its first makes it usable elsewhere); carries the run folder."""
    sig_consent_requested = Signal(str)
    """The user asked to record or review the consent of this dataset folder."""
    sig_job = Signal(str, int, int)
    """Training progress for the status bar: text ('' when idle), step, target steps."""
    sig_status = Signal(str)
    """A one-line message for the status bar."""

    def __init__(
        self, project: Project, errors: ErrorReporter, parent: QWidget | None = None, ui_ms: int = 250
    ) -> None:
        super().__init__(parent)
        self.project, self.errors = project, errors
        self.tier = device_tier(gpu_total_memory())
        self.worker: AnyTrainWorker | None = None
        self.thread: QThread | None = None
        self.run_dir: Path | None = None
        self.target_steps: int | None = None
        self.latest_stats: dict[str, Any] = {}
        self.last_checkpoint: str | None = None
        self.result: RunResult | None = None
        self.log_run: Path | None = None  # the run whose lines the log shows
        self.run_names: tuple[str, str] = ("", "")  # family and dataset of the running run, for its list entry
        self._icon_image: QImage | None = None  # the preview frame the running run's list icon shows
        self._stats_dirty = False
        self.consent_ok = False
        self.tune_dialog: TuneDialog | None = None
        self.fix_dialog: FixDialog | None = None
        # a fix that resumes the running run waits here until its thread has ended: (run, until, settings)
        self._pending_fix: tuple[Path, int | None, dict[str, Any]] | None = None
        self.plan: MemoryPlan | None = None  # the memory plan shown (quick, or measured by Measure)
        self.plan_worker: PlanWorker | None = None
        self.plan_thread: QThread | None = None
        self._build()
        self._fill_tasks()
        self._fill_scales()
        self._show_kind_fields()
        self.ui_timer = QTimer(self)
        self.ui_timer.setInterval(ui_ms)
        self.ui_timer.timeout.connect(self._refresh_stats)
        self.ui_timer.start()
        self.refresh_datasets()
        self.refresh_runs()
        self.refresh_plan()

    # -- layout -----------------------------------------------------------------------------------
    def _build(self) -> None:
        splitter = QSplitter(Qt.Orientation.Horizontal)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(self._settings_column())
        self.settings_scroll = scroll
        scroll.setMinimumWidth(380)
        splitter.addWidget(scroll)
        splitter.addWidget(self._live_column())
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([400, 1000])
        layout = QVBoxLayout(self)
        layout.addWidget(splitter)

    def _settings_column(self) -> QWidget:
        column = QWidget()
        layout = QVBoxLayout(column)
        title = QLabel("Train")
        title.setObjectName("Heading")
        layout.addWidget(title)
        layout.addWidget(self._what_box())
        layout.addWidget(self._model_box())
        layout.addWidget(self._advanced_box())
        layout.addWidget(self._memory_box())
        layout.addWidget(self._cluster_section())
        layout.addLayout(self._control_buttons())
        layout.addWidget(self._runs_box(), 1)
        return column

    def _what_box(self) -> QGroupBox:
        box = QGroupBox("Dataset")
        inner = QVBoxLayout(box)
        self.dataset_combo = QComboBox()
        self.dataset_combo.setToolTip("The project's imported datasets")
        self.dataset_combo.activated.connect(lambda _: self._on_dataset_changed())
        self.consent_label = QLabel("")
        self.consent_label.setWordWrap(True)
        self.consent_button = QPushButton("Consent…")
        self.consent_button.setToolTip("Record or review the attestation this dataset needs before training")
        self.consent_button.clicked.connect(self._request_consent)
        row = QHBoxLayout()
        row.addWidget(self.consent_label, 1)
        row.addWidget(self.consent_button)
        self.dataset_warning = QLabel("")
        self.dataset_warning.setObjectName("Warning")
        self.dataset_warning.setWordWrap(True)
        self.dataset_warning.setVisible(False)
        inner.addWidget(self.dataset_combo)
        inner.addLayout(row)
        inner.addWidget(self.dataset_warning)
        return box

    def _model_box(self) -> QGroupBox:
        box = QGroupBox("Model")
        form = QFormLayout(box)
        self.family_combo = QComboBox()
        names = family_names()
        for name in names:
            self.family_combo.addItem(name, name)
            self.family_combo.setItemData(
                self.family_combo.count() - 1, get_family(name).description, Qt.ItemDataRole.ToolTipRole
            )
        self.family_combo.setCurrentIndex(names.index(preferred_family(names)))
        self.family_combo.currentIndexChanged.connect(self._on_family_changed)
        self.family_label = QLabel(get_family(self.family()).description)
        self.family_label.setObjectName("Muted")
        self.family_label.setWordWrap(True)
        self.preset_combo = QComboBox()
        for key, preset in PRESETS.items():
            self.preset_combo.addItem(preset.label, key)
            self.preset_combo.setItemData(self.preset_combo.count() - 1, preset.summary, Qt.ItemDataRole.ToolTipRole)
        self.preset_combo.setCurrentIndex(list(PRESETS).index(DEFAULT_PRESET))
        self.preset_combo.currentIndexChanged.connect(lambda _: self.apply_preset())
        self.preset_label = QLabel("")
        self.preset_label.setObjectName("Muted")
        self.preset_label.setWordWrap(True)
        self.task_combo = QComboBox()
        self.task_combo.setToolTip("What an image-to-image family learns from your images")
        self.task_combo.currentIndexChanged.connect(self._on_task_changed)
        self.task_label = QLabel("Task")
        self.scale_combo = QComboBox()
        self.scale_combo.setToolTip("How many times larger the upscaler makes an image, on each side")
        self.scale_combo.currentIndexChanged.connect(self._on_scale_changed)
        self.scale_label = QLabel("Upscaling")
        form.addRow("Family", self.family_combo)
        form.addRow(self.family_label)
        form.addRow(self.task_label, self.task_combo)
        form.addRow(self.scale_label, self.scale_combo)
        form.addRow("Preset", self.preset_combo)
        form.addRow(self.preset_label)
        self.tune_button = QPushButton("Find good settings…")
        self.tune_button.setToolTip(TUNE_TIP)
        self.tune_button.clicked.connect(self.open_tune_dialog)
        form.addRow(self.tune_button)
        return box

    def _advanced_box(self) -> QWidget:
        box = QWidget()
        inner = QVBoxLayout(box)
        inner.setContentsMargins(0, 0, 0, 0)
        self.advanced_button = _disclosure_button(
            "Advanced settings", "Every setting of the run; hover a setting to read what it does"
        )
        self.advanced_button.toggled.connect(self._toggle_advanced)
        self.advanced_tabs = QTabWidget()
        self.train_form = ConfigForm(TrainConfig, exclude=FORM_EXCLUDE)
        self.family_form = ConfigForm(get_family(self.family()).Config)
        self.advanced_tabs.addTab(_scrolled(self.train_form), "Training")
        self.advanced_tabs.addTab(_scrolled(self.family_form), "Model options")
        self.advanced_tabs.setMinimumHeight(320)
        self.advanced_tabs.setVisible(False)
        inner.addWidget(self.advanced_button)
        inner.addWidget(self.advanced_tabs)
        self.advanced_box = box
        return box

    def _memory_box(self) -> QGroupBox:
        box = QGroupBox("Memory plan")
        self.memory_box = box
        box.setToolTip(
            "Gradient accumulation, mixed precision and channels-last chosen for the device; set any of them "
            "yourself under Advanced settings (Gradient accumulation, Mixed precision, Channels-last memory layout)"
        )
        inner = QVBoxLayout(box)
        self.plan_label = QLabel("")
        self.plan_label.setWordWrap(True)
        self.measure_button = QPushButton("Measure for this device")
        self.measure_button.setToolTip(
            "Build the model and estimate one step's memory, then choose the gradient accumulation that fits "
            "(a run measures this itself when it starts on a GPU)"
        )
        self.measure_button.clicked.connect(self.measure_plan)
        inner.addWidget(self.plan_label)
        inner.addWidget(self.measure_button)
        for name in (*PLANNED_FIELDS, "device", "resolution"):
            self.train_form.editors[name].sig_changed.connect(self.refresh_plan)
        return box

    def _world_size(self) -> int:
        return self.processes_spin.value() * self.nodes_spin.value()

    def refresh_plan(self) -> MemoryPlan | None:
        """Show the planner's device defaults for the current settings (instant: nothing is built)."""
        try:
            config = self.build_config()
            plan = plan_memory(config, select_device(config.device), world_size=self._world_size(), probe=False)
        except GanStudioError as exc:
            self.plan = None
            self.plan_label.setText(f"No plan: {gui_message(exc)}")
            return None
        self._show_plan(plan)
        return plan

    def measure_plan(self) -> bool:
        """Measure the model's memory on the device in a worker thread; the label shows the result."""
        if self.plan_thread is not None:
            return False
        config = self._checked_config(consent=False)
        if config is None:
            return False
        self.plan_worker = PlanWorker(config, self._world_size())
        self.plan_worker.sig_finished.connect(self._show_plan)
        self.plan_worker.sig_failed.connect(self.errors.report)
        self.plan_thread = self.plan_worker.start(self)
        self.plan_thread.finished.connect(self._on_plan_thread_finished)
        self.measure_button.setEnabled(False)
        self.plan_label.setText("Measuring one training step of this model…")
        return True

    def _on_plan_thread_finished(self) -> None:
        if self.plan_thread is not None:
            self.plan_thread.deleteLater()
        self.plan_worker, self.plan_thread = None, None
        self.measure_button.setEnabled(True)

    def _show_plan(self, plan: MemoryPlan) -> None:
        self.plan = plan
        words = {True: "on", False: "off"}
        lines = [
            f"Each step: {plan.batch_size} images"
            + (f", {plan.batch_size // plan.world_size} per process" if plan.world_size > 1 else "")
            + f", in {plan.accumulate} micro-batch{'es' if plan.accumulate > 1 else ''} of {plan.micro_batch}",
            f"Mixed precision {words[plan.amp]} · channels-last {words[plan.channels_last]} on {plan.device}",
        ]
        if plan.estimated_peak_bytes is not None:
            free = f" of {plan.free_bytes / 2**30:.1f} GiB free" if plan.free_bytes is not None else ""
            lines.append(f"Estimated peak {plan.estimated_peak_bytes / 2**30:.2f} GiB{free}")
        yours = [n for n in PLANNED_FIELDS if not plan.chosen.get(n) and n != "batch_size"]
        lines.append(f"Yours: {', '.join(yours)}" if yours else "Planned for this device (change under Advanced)")
        self.plan_label.setText("\n".join(lines))
        self.plan_label.setToolTip(plan.describe())

    def _cluster_section(self) -> QWidget:
        """The cluster box under a toggle like Advanced settings: open from the start only on a machine with
        several GPUs, so it does not crowd the page for everyone else."""
        section = QWidget()
        inner = QVBoxLayout(section)
        inner.setContentsMargins(0, 0, 0, 0)
        self.cluster_button = _disclosure_button(
            "Several GPUs or machines", "Train one model with several processes: one per GPU, or several machines"
        )
        box = self._cluster_box()
        self.cluster_button.toggled.connect(self._toggle_cluster)
        inner.addWidget(self.cluster_button)
        inner.addWidget(box)
        self._toggle_cluster(False)
        self.cluster_button.setChecked(_gpu_count() > 1)
        return section

    def _toggle_cluster(self, shown: bool) -> None:
        self.cluster_box.setVisible(shown)
        self.cluster_button.setArrowType(Qt.ArrowType.DownArrow if shown else Qt.ArrowType.RightArrow)

    def _cluster_box(self) -> QGroupBox:
        box = QGroupBox()  # titled by its toggle (_cluster_section)
        self.cluster_box = box
        box.setToolTip("Train one model with several processes through PyTorch's torchrun (docs/training.md)")
        form = QFormLayout(box)
        self.processes_spin = QSpinBox()
        self.processes_spin.setRange(1, max(2, _gpu_count()))
        self.processes_spin.setValue(max(1, _gpu_count()))
        self.processes_spin.setToolTip(PROCESSES_TIP)
        self.nodes_spin = QSpinBox()
        self.nodes_spin.setRange(1, 1024)
        self.nodes_spin.setToolTip("Machines that train together; start the command on each with its --node_rank")
        self.endpoint_edit = QLineEdit("HOST:29500")
        self.endpoint_edit.setToolTip("host:port of the first machine, which every machine can reach")
        self.command_view = QPlainTextEdit()
        self.command_view.setReadOnly(True)
        self.command_view.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.command_view.setMaximumHeight(84)
        self.command_view.setToolTip("What each machine of a cluster runs for these settings (Copy command copies it)")
        self.copy_command_button = QPushButton("Copy command")
        self.copy_command_button.setToolTip(
            "Save these settings in a new run folder and copy the torchrun command that trains it"
        )
        self.copy_command_button.clicked.connect(self.copy_cluster_command)
        self.processes_button = QPushButton("Start on this machine")
        self.processes_button.setToolTip("Start the processes here and watch the run on this page")
        self.processes_button.clicked.connect(self.start_processes)
        for signal in (self.processes_spin.valueChanged, self.nodes_spin.valueChanged):
            signal.connect(self._on_cluster_changed)
        self.endpoint_edit.textChanged.connect(self._on_cluster_changed)
        buttons = QHBoxLayout()
        buttons.addWidget(self.copy_command_button)
        buttons.addWidget(self.processes_button)
        form.addRow("Processes per machine", self.processes_spin)
        form.addRow("Machines", self.nodes_spin)
        form.addRow("First machine", self.endpoint_edit)
        form.addRow(self.command_view)
        form.addRow(buttons)
        self._show_cluster_command()
        return box

    def cluster_command(self, run_dir: Path | str = "RUN") -> str:
        """The torchrun command line for the current process and machine counts, training ``run_dir``."""
        nodes = self.nodes_spin.value()
        command = torchrun_command(
            Path(run_dir) / SETTINGS_NAME,
            run_dir,
            self.processes_spin.value(),
            nodes=nodes,
            node_rank=0,
            endpoint=self.endpoint_edit.text().strip() or "HOST:29500",
        )
        return format_command(command)

    def _on_cluster_changed(self, *_: object) -> None:
        self._show_cluster_command()
        self._update_buttons()
        self.refresh_plan()

    def _show_cluster_command(self) -> None:
        nodes = self.nodes_spin.value()
        self.endpoint_edit.setEnabled(nodes > 1)
        words = self.cluster_command()
        if nodes > 1:
            words += f"\n# on machine k of {nodes}: the same with --node_rank=k"
        self.command_view.setPlainText(words)

    def _prepare_process_run(self) -> tuple[Path, TrainConfig] | None:
        """A new run folder holding these settings (settings.json) for torchrun; None (with a message) when
        the settings cannot train."""
        config = self._checked_config(processes=self._world_size())
        if config is None:
            return None
        run_dir = self.project.new_run_dir(config.family)
        atomic_write_json(run_dir / SETTINGS_NAME, {**config.to_dict(), "dataset": str(Path(config.dataset).resolve())})
        return run_dir, config

    def copy_cluster_command(self) -> str:
        """Save the settings in a new run folder and put its torchrun command on the clipboard; the command."""
        prepared = self._prepare_process_run()
        if prepared is None:
            return ""
        command = self.cluster_command(prepared[0])
        QGuiApplication.clipboard().setText(command)
        self.command_view.setPlainText(command)
        self.sig_status.emit(f"Command copied; the settings are in {prepared[0] / SETTINGS_NAME}")
        return command

    def start_processes(self) -> bool:
        """Start the multi-process run the box describes on this machine and follow it here."""
        if self.is_running():
            return False
        prepared = self._prepare_process_run()
        if prepared is None:
            return False
        run_dir, config = prepared
        command = torchrun_command(run_dir / SETTINGS_NAME, run_dir, self.processes_spin.value())
        self._launch(ProcessTrainWorker(command, run_dir), run_dir, config.steps, fresh=True)
        self.run_names = (config.family, config.dataset)
        return True

    def _toggle_advanced(self, shown: bool) -> None:
        self.advanced_tabs.setVisible(shown)
        self.advanced_button.setArrowType(Qt.ArrowType.DownArrow if shown else Qt.ArrowType.RightArrow)

    def _control_buttons(self) -> QHBoxLayout:
        row = QHBoxLayout()
        self.start_button = QPushButton("Start training")
        self.start_button.setProperty("primary", True)
        self.start_button.setToolTip("Start a new run with these settings (Ctrl+Enter)")
        self.start_button.clicked.connect(self.start)
        self.pause_button = QPushButton("Pause")
        self.pause_button.setToolTip("Pause or continue the run (Ctrl+P)")
        self.pause_button.clicked.connect(self.toggle_pause)
        self.stop_button = QPushButton("Stop")
        self.stop_button.setToolTip("Save a checkpoint and stop (Ctrl+.)")
        self.stop_button.clicked.connect(self.stop)
        for button in (self.start_button, self.pause_button, self.stop_button):
            row.addWidget(button)
        return row

    def _runs_box(self) -> QGroupBox:
        box = QGroupBox("Runs in this project")
        inner = QVBoxLayout(box)
        self.runs_list = QListWidget()
        self.runs_list.setIconSize(QSize(56, 56))
        self.runs_list.setMinimumHeight(160)
        self.runs_list.currentItemChanged.connect(self._on_run_selected)
        row = QHBoxLayout()
        self.until_spin = QSpinBox()
        self.until_spin.setRange(1, 10_000_000)
        self.until_spin.setSingleStep(100)
        self.until_spin.setToolTip("Continue the selected run until this step")
        self.resume_button = QPushButton("Resume")
        self.resume_button.setToolTip("Continue the selected run from its newest checkpoint, exactly where it stopped")
        self.resume_button.clicked.connect(self.resume_selected)
        row.addWidget(QLabel("until step"))
        row.addWidget(self.until_spin, 1)
        row.addWidget(self.resume_button)
        inner.addWidget(self.runs_list, 1)
        inner.addLayout(row)
        return box

    def _live_column(self) -> QWidget:
        column = QWidget()
        layout = QVBoxLayout(column)
        layout.addLayout(self._stats_grid())
        self.progress = QProgressBar()
        self.progress.setFormat("%v / %m steps")
        layout.addWidget(self.progress)
        self.health_strip = HealthStrip(DETECTOR_LABELS)
        self.findings_panel = FindingsPanel(DETECTOR_LABELS)
        self.findings_panel.sig_fix.connect(self._on_fix)
        self.health_strip.sig_detector_clicked.connect(self.findings_panel.show_detector)
        layout.addWidget(self.health_strip)
        splitter = QSplitter(Qt.Orientation.Horizontal)
        self.preview = PreviewView()
        splitter.addWidget(self.preview)
        right = QSplitter(Qt.Orientation.Vertical)
        self.chart = LossChart()
        self.log = QPlainTextEdit()
        self.log.setReadOnly(True)
        self.log.setMaximumBlockCount(LOG_LINES)
        self.log.setPlaceholderText("Training log")
        right.addWidget(self.chart)
        right.addWidget(self.log)
        right.setSizes([400, 200])
        splitter.addWidget(right)
        splitter.setSizes([560, 440])
        # the findings above the live views; the user can drag the split when a finding needs room
        self.health_split = QSplitter(Qt.Orientation.Vertical)
        self.health_split.addWidget(self.findings_panel)
        self.health_split.addWidget(splitter)
        self.health_split.setStretchFactor(1, 1)
        self.health_split.setChildrenCollapsible(False)
        self.findings_panel.setMinimumHeight(28)
        self._fit_findings()
        layout.addWidget(self.health_split, 1)
        return column

    def _stats_grid(self) -> QGridLayout:
        grid = QGridLayout()
        self.stat_labels: dict[str, QLabel] = {}
        names = (
            ("step", "Step"),
            ("speed", "Images/s"),
            ("epoch", "Per epoch"),
            ("eta", "Time left"),
            ("augment", "Augmentation p"),
            ("state", "State"),
        )
        for column, (key, title) in enumerate(names):
            caption = QLabel(title)
            caption.setObjectName("Muted")
            value = QLabel("-")
            value.setObjectName("StatValue")
            value.setMinimumWidth(130)  # a wider text must not re-layout the page on every update
            grid.addWidget(caption, 0, column)
            grid.addWidget(value, 1, column)
            self.stat_labels[key] = value
        self.stat_labels["state"].setText("idle")
        return grid

    # -- project, datasets, settings ----------------------------------------------------------------
    def set_project(self, project: Project) -> None:
        """Show another project's datasets and runs (never while training)."""
        self.project = project
        self.preview.clear()
        self.chart.clear()
        self.log.clear()
        self.log_run = None
        self._show_findings([], None)
        self.refresh_datasets()
        self.refresh_runs()

    def family(self) -> str:
        """The selected family name."""
        return str(self.family_combo.currentData())

    def dataset_dir(self) -> Path | None:
        """The selected dataset folder."""
        data = self.dataset_combo.currentData()
        return Path(data) if data else None

    def refresh_datasets(self, select: Path | str | None = None) -> None:
        """Re-list datasets; keep or set the selection, then refresh consent and preset."""
        current = str(select) if select else str(self.dataset_dir() or "")
        self.dataset_combo.blockSignals(True)
        self.dataset_combo.clear()
        for path in self.project.datasets():
            self.dataset_combo.addItem(path.name, str(path))
        index = self.dataset_combo.findData(current)
        self.dataset_combo.setCurrentIndex(max(index, 0) if self.dataset_combo.count() else -1)
        self.dataset_combo.blockSignals(False)
        self._on_dataset_changed()

    def select_dataset(self, dataset_dir: Path | str) -> None:
        """Select ``dataset_dir`` (listing it first when it is new)."""
        if dataset_dir:
            self.refresh_datasets(select=dataset_dir)

    def _on_dataset_changed(self) -> None:
        self.refresh_consent()
        self._warn_if_few_images()
        self.apply_preset()

    def _warn_if_few_images(self) -> None:
        """Under FEW_IMAGES images a GAN mostly copies them: say so here too, not only on the Dataset page."""
        count = self._dataset_count()
        few = count is not None and 0 < count < FEW_IMAGES
        self.dataset_warning.setVisible(few)
        if few:
            small_data = preferred_family(family_names())
            self.dataset_warning.setText(
                f"Only {count} images: GANs usually need thousands, and with this few a model mostly copies them. "
                f"The {small_data} family copes best with small folders; adding images on the Dataset page helps most."
            )

    def _dataset_count(self) -> int | None:
        dataset = self.dataset_dir()
        try:
            return read_report(dataset).kept if dataset else None
        except GanStudioError:
            return None

    def refresh_consent(self) -> None:
        """Enable Start only when the selected dataset has a valid attestation."""
        ok, text = consent_status(self.dataset_dir())
        self.consent_ok = ok
        self.consent_label.setText(text if self.dataset_dir() else "Import a dataset on the Dataset page first.")
        self.consent_label.setObjectName("ConsentOk" if ok else "ConsentMissing")
        self.consent_label.style().polish(self.consent_label)
        self.consent_button.setEnabled(self.dataset_dir() is not None)
        self._update_buttons()

    def _request_consent(self) -> None:
        if self.dataset_dir() is not None:
            self.sig_consent_requested.emit(str(self.dataset_dir()))

    def _on_family_changed(self) -> None:
        self.family_label.setText(get_family(self.family()).description)
        form = ConfigForm(get_family(self.family()).Config)
        self.advanced_tabs.removeTab(1)
        self.advanced_tabs.insertTab(1, _scrolled(form), "Model options")
        self.family_form.deleteLater()
        self.family_form = form
        self._fill_tasks()
        self._fill_scales()
        self._show_kind_fields()
        self.apply_preset()

    def _fill_tasks(self) -> None:
        """The task drop-down lists the family's tasks; it is hidden for noise-to-image families."""
        tasks = tuple(getattr(get_family(self.family()), "tasks", ()))
        self.task_combo.blockSignals(True)
        self.task_combo.clear()
        for name in tasks:
            task = get_task(name)
            self.task_combo.addItem(task.label, name)
            self.task_combo.setItemData(self.task_combo.count() - 1, task.description, Qt.ItemDataRole.ToolTipRole)
        self.task_combo.blockSignals(False)
        self.task_combo.setEnabled(len(tasks) > 1)
        for widget in (self.task_combo, self.task_label):
            widget.setVisible(bool(tasks))

    def _fill_scales(self) -> None:
        """An upscaling family's factor (its option ``scale``) gets a row of its own; hidden for the others."""
        family_cls = get_family(self.family())
        choices: tuple[Any, ...] = ()
        if family_cls.kind == "upscale" and "scale" in self.family_form.editors:
            combo = getattr(self.family_form.editors["scale"], "combo", None)  # a Literal field's drop-down
            choices = tuple(combo.itemData(i) for i in range(combo.count())) if combo is not None else ()
        self.scale_combo.blockSignals(True)
        self.scale_combo.clear()
        for value in choices:
            self.scale_combo.addItem(f"×{value}", value)
        editor = self.family_form.editors.get("scale")
        if choices and editor is not None:
            self.scale_combo.setCurrentIndex(max(0, self.scale_combo.findData(editor.value())))
        self.scale_combo.blockSignals(False)
        for widget in (self.scale_combo, self.scale_label):
            widget.setVisible(bool(choices))

    def _on_scale_changed(self, *_: object) -> None:
        editor = self.family_form.editors.get("scale")
        if editor is not None and self.scale_combo.count() and self.scale_combo.currentData() is not None:
            editor.set_value(self.scale_combo.currentData())

    def set_scale(self, scale: int) -> None:
        """Choose the upscaling factor of an upscaling family."""
        index = self.scale_combo.findData(scale)
        if index < 0:
            raise ValueError(f"family {self.family()} has no upscaling factor {scale}")
        self.scale_combo.setCurrentIndex(index)
        self._on_scale_changed()

    def _show_kind_fields(self) -> None:
        """Hide the class and KID settings for an upscaling family (they would do nothing there)."""
        shown = get_family(self.family()).kind != "upscale"
        for name in NOISE_ONLY_FIELDS:
            for widget in (self.train_form.editors.get(name), self.train_form.labels.get(name)):
                if widget is not None:
                    widget.setVisible(shown)

    def set_task(self, task: str) -> None:
        """Choose ``task`` (sketch, colorize, paired...) for the selected image-to-image family."""
        index = self.task_combo.findData(task)
        if index < 0:
            raise ValueError(f"family {self.family()} has no task {task}")
        self.task_combo.setCurrentIndex(index)
        self._on_task_changed()

    def _on_task_changed(self, *_: object) -> None:
        editor = self.family_form.editors.get("task")
        if editor is not None and self.task_combo.currentData():
            editor.set_value(self.task_combo.currentData())

    def set_preset(self, name: str) -> None:
        """Select preset ``name`` (quick, balanced, quality) and apply it."""
        self.preset_combo.setCurrentIndex(list(PRESETS).index(name))
        self.apply_preset()

    def apply_preset(self) -> None:
        """Fill both forms from the family's defaults plus the selected preset for this device."""
        family_cls = get_family(self.family())
        settings = preset_settings(str(self.preset_combo.currentData()), family_cls, self.tier, self._dataset_size())
        self.train_form.reset()
        self.train_form.set_values({k: v for k, v in settings.items() if k != "family_options"})
        self.family_form.reset()
        self.family_form.set_values(settings["family_options"])
        self._on_task_changed()  # a preset never chooses the task
        self._on_scale_changed()  # nor the upscaling factor
        self.preset_label.setText(
            f"{PRESETS[str(self.preset_combo.currentData())].summary}\n"
            f"On this {self.tier.replace('-', ' ')}: {describe_settings(settings, family_cls.Config)}."
        )
        self.refresh_plan()

    def _dataset_size(self) -> int:
        dataset = self.dataset_dir()
        try:
            return int(read_report(dataset).options.get("size", 64)) if dataset else 64
        except GanStudioError:
            return 64

    def build_config(self) -> TrainConfig:
        """The TrainConfig the forms describe; ConfigError naming the setting when one is invalid."""
        dataset = self.dataset_dir()
        if dataset is None:
            raise ConfigError("no dataset selected: import a folder on the Dataset page first.")
        values = self.train_form.values()
        options = self.family_form.changed_values()
        if "task" in self.family_form.editors:  # recorded even when it is the default: the run says what it learns
            options["task"] = self.family_form.editors["task"].value()
        try:
            config = TrainConfig(dataset=str(dataset), family=self.family(), family_options=options, **values)
        except TypeError as exc:
            raise ConfigError(f"invalid training setting: {exc}") from None
        config.validate()
        return config

    # -- runs list --------------------------------------------------------------------------------
    def refresh_runs(self, select: Path | None = None) -> None:
        """Re-list the project's runs with their newest preview."""
        self.runs_list.blockSignals(True)
        self.runs_list.clear()
        for run_dir in self.project.runs():
            self.runs_list.addItem(_run_item(run_dir))
        self.runs_list.blockSignals(False)
        self._update_running_item()
        for row in range(self.runs_list.count()):
            if select is not None and self.runs_list.item(row).data(RUN_ROLE) == str(select):
                self.runs_list.setCurrentRow(row)
        self._update_buttons()

    def selected_run(self) -> Path | None:
        """The run folder selected in the list."""
        item = self.runs_list.currentItem()
        return Path(item.data(RUN_ROLE)) if item is not None and item.data(RUN_ROLE) else None

    def _on_run_selected(self, *_: object) -> None:
        run_dir = self.selected_run()
        self._update_buttons()
        if run_dir is None or self.is_running():
            return
        self.show_run(run_dir)

    def show_run(self, run_dir: Path) -> None:
        """Show a run that is not training: its previews (scrubbable), curves, log and where it stopped.

        The step shown is its newest checkpoint's (where Resume continues), not the last logged one.
        """
        self.preview.set_history(preview_steps(run_dir), lambda step: preview_path(run_dir, step))
        records = read_stats(run_dir)
        self.chart.set_history(records)
        try:
            info = run_info(run_dir)
        except GanStudioError:
            info = {}
        target = int(info.get("steps_target") or 0)
        step = info.get("checkpoint_step")
        step = int(step if step is not None else info.get("step", 0))
        last = dict(records[-1]) if records else {}
        last.update(step=step, eta_seconds=None)  # a run that is not training has no time left
        self._show_stats(last, target or None)
        self._show_ended(step, target or None, stopped=bool(target) and step < target)
        self._show_findings(read_health(run_dir), run_dir)
        if self.log_run != run_dir:  # the run just trained here: keep its session's lines
            self._show_log(run_dir)
        self.until_spin.setValue(max(target, step) + (0 if target > step else max(100, step // 2)))

    def _show_log(self, run_dir: Path) -> None:
        """Fill the log with the run's own log.txt, so a resumed run's lines follow its history."""
        self.log.clear()
        self.log.appendPlainText("\n".join(read_log(run_dir, LOG_LINES)))
        self.log_run = run_dir

    def _show_ended(self, step: int, target: int | None, stopped: bool) -> None:
        """The bar says where a run that is not training stands."""
        of = f" of {target:,}" if target else ""
        self.progress.setFormat(f"Stopped at step {step:,}{of}" if stopped else f"Finished at step {step:,}{of}")
        self.stat_labels["state"].setText("stopped" if stopped else "finished")

    # -- controls ---------------------------------------------------------------------------------
    def is_running(self) -> bool:
        """True from start until the worker's thread has ended."""
        return self.thread is not None

    def start(self) -> bool:
        """Start a new run with the current settings; False (with a message) when it cannot start."""
        if self.is_running():
            return False
        config = self._checked_config()
        if config is None:
            return False
        run_dir = self.project.new_run_dir(config.family)
        self._launch(TrainWorker.new_run(config, run_dir), run_dir, config.steps, fresh=True)
        self.run_names = (config.family, config.dataset)
        return True

    def _checked_config(self, consent: bool = True, processes: int = 1) -> TrainConfig | None:
        """The settings, ready to train with ``processes`` processes; None after telling the user why not (no
        consent attestation, with ``consent``; an invalid setting; a batch that does not divide among them)."""
        ok, text = consent_status(self.dataset_dir())
        if consent and not ok:
            self.errors.report(
                f"Training needs a consent attestation for this dataset. {text} Use the Consent… button to record it."
            )
            return None
        try:
            config = self.build_config()
            if config.batch_size % processes:
                raise ConfigError(
                    f"Batch size ({config.batch_size}) must divide evenly among the {processes} processes: "
                    "set a multiple of them"
                )
        except GanStudioError as exc:
            self.errors.report(gui_message(exc))
            return None
        return config

    def resume_selected(self) -> bool:
        """Continue the selected run up to the step in the spin box."""
        run_dir = self.selected_run()
        if run_dir is None or self.is_running():
            return False
        return self.resume_run(run_dir, self.until_spin.value())

    def resume_run(self, run_dir: Path, until: int | None, settings: dict[str, Any] | None = None) -> bool:
        """Continue ``run_dir`` up to step ``until``; ``settings`` (a fix's TrainConfig overrides) apply from there."""
        if self.is_running():
            return False
        try:
            config = read_run_config(run_dir)
        except GanStudioError as exc:
            self.errors.report(gui_message(exc))
            return False
        self._launch(TrainWorker.resume_run(run_dir, steps=until, settings=settings), run_dir, until, fresh=False)
        if settings:
            changed = ", ".join(f"{k}={v}" for k, v in settings.items())
            self._append_log(f"Applying the doctor's fix: {changed}")
        self.run_names = (config.family, config.dataset)
        return True

    def _launch(self, worker: AnyTrainWorker, run_dir: Path, target: int | None, fresh: bool) -> None:
        self.worker, self.run_dir, self.target_steps = worker, run_dir, target
        self.result, self.last_checkpoint, self.latest_stats = None, None, {}
        if fresh:
            self.preview.clear()
            self.chart.clear()
            self.log.clear()
            self.log_run = run_dir
            self._show_findings([], run_dir)
        else:
            if self.log_run != run_dir:
                self._show_log(run_dir)  # resuming appends to the run's own history, never to another run's
            self._show_findings(_findings_until_checkpoint(run_dir), run_dir)  # the resume judges later ones again
        self.preview.set_path_for(lambda step: preview_path(run_dir, step))
        self.progress.setFormat("%v / %m steps")
        self._icon_image = self.preview.latest  # a frame shown before this run started is not its preview
        self._append_log(f"Starting {run_dir.name}" if fresh else f"Resuming {run_dir.name} until step {target or 0:,}")
        for signal, slot in (
            (worker.sig_step, self._on_step),
            (worker.sig_preview, self._on_preview),
            (worker.sig_checkpoint, self._on_checkpoint),
            (worker.sig_log, self._append_log),
            (worker.sig_metric, self.chart.add),
            (worker.sig_health, self._on_health),
            (worker.sig_finished, self._on_finished),
            (worker.sig_failed, self._on_failed),
        ):
            signal.connect(slot)
        self.thread = worker.start(self)
        self.thread.finished.connect(self._on_thread_finished)
        self.stat_labels["state"].setText("starting")
        self._update_buttons()
        self.sig_running_changed.emit(True)

    def toggle_pause(self) -> None:
        """Pause a running run, or continue a paused one."""
        if self.worker is None or self.worker.stopping or not self.worker.can_pause:
            return
        if self.worker.paused:
            self.worker.resume()
        else:
            self.worker.pause()
        self.stat_labels["state"].setText("paused" if self.worker.paused else "training")
        self._update_buttons()

    def stop(self) -> None:
        """Ask the run to save a checkpoint and stop; the page turns idle when its thread ends."""
        if self.worker is None:
            return
        self.worker.stop()
        self.worker.resume()
        self.stat_labels["state"].setText("saving checkpoint…")
        self.sig_status.emit("Stopping: saving a checkpoint…")
        self._update_buttons()
        self._emit_job()

    def _update_buttons(self) -> None:
        running = self.is_running()
        stopping = bool(self.worker and self.worker.stopping)
        self.pause_button.setEnabled(running and not stopping and bool(self.worker and self.worker.can_pause))
        self.pause_button.setText("Continue" if self.worker and self.worker.paused else "Pause")
        self.stop_button.setEnabled(running and not stopping)
        self.resume_button.setEnabled(not running and self.selected_run() is not None)
        tuning = self.tune_dialog is not None and self.tune_dialog.is_running()
        self.start_button.setEnabled(not running and self.consent_ok and not tuning)  # one job at a time
        local = self.nodes_spin.value() == 1 and self.processes_spin.value() > 1
        self.processes_button.setEnabled(not running and self.consent_ok and not tuning and local)
        self.copy_command_button.setEnabled(self.consent_ok)
        generates = get_family(self.family()).kind == "generate"
        self.tune_button.setEnabled(not running and not tuning and self.consent_ok and generates)
        self.tune_button.setToolTip(TUNE_TIP if generates else TUNE_TIP_TRANSLATE)
        self.until_spin.setEnabled(not running and self.selected_run() is not None)
        for widget in (self.dataset_combo, self.family_combo, self.preset_combo, self.advanced_box):
            widget.setEnabled(not running)

    # -- the training doctor ------------------------------------------------------------------------
    def _show_findings(self, findings: list[Finding], run_dir: Path | None) -> None:
        self.health_strip.set_findings(findings)
        self.findings_panel.set_findings(findings, run_dir)
        self._fit_findings()

    def _fit_findings(self) -> None:
        """One line for "No problems found so far"; room for the cards when there are findings."""
        sizes = self.health_split.sizes()
        total = sum(sizes) or 900
        wanted = min(FINDINGS_HEIGHT, self.findings_panel.content_height())
        self.health_split.setSizes([wanted, max(200, total - wanted)])

    def _on_fix(self, finding: Finding, fix: Fix) -> None:
        """A fix button: resume with its settings (after showing them), stop, or prefill another family."""
        run_dir = self.findings_panel.run_dir
        if run_dir is None:
            return
        if fix.action == "stop":
            self.apply_stop_fix(run_dir, finding)
        elif fix.action == "family":
            self.apply_family_fix(run_dir, finding, fix)
        else:
            self.ask_resume_fix(run_dir, finding, fix)

    def ask_resume_fix(self, run_dir: Path, finding: Finding, fix: Fix) -> FixDialog | None:
        """Show what ``fix`` changes in ``run_dir``'s settings; accepting resumes it with them."""
        running_here = self.is_running() and self.run_dir == run_dir
        if self.is_running() and not running_here:
            self.errors.report("Another run is training; stop it before applying a fix to this one.")
            return None
        try:
            config = read_run_config(run_dir)
        except GanStudioError as exc:
            self.errors.report(gui_message(exc))
            return None
        labels = field_labels(TrainConfig)
        current = config.to_dict()
        changes = [(labels.get(k, k), current.get(k), v) for k, v in fix.settings.items() if current.get(k) != v]
        until = self._fix_target(run_dir, config)
        dialog = FixDialog(run_dir.name, fix, changes, until, stops_first=running_here, parent=self)
        dialog.accepted.connect(lambda: self._start_fix(run_dir, dict(fix.settings), dialog.until()))
        dialog.finished.connect(dialog.deleteLater)
        self.fix_dialog = dialog
        dialog.open()  # window-modal, never a nested event loop: training signals keep arriving
        return dialog

    def _start_fix(self, run_dir: Path, settings: dict[str, Any], until: int | None) -> None:
        self.fix_dialog = None
        if self.is_running() and self.run_dir == run_dir:
            self._pending_fix = (run_dir, until, settings)
            self._append_log("Stopping to apply the doctor's fix; the run resumes with it after its checkpoint")
            self.stop()
        elif not self.is_running():
            self.resume_run(run_dir, until, settings)

    def _fix_target(self, run_dir: Path, config: TrainConfig) -> int | None:
        """The step a fixed run trains to: its own target while it has not reached it, else half as far again."""
        if self.is_running() and self.run_dir == run_dir:
            return self.target_steps
        try:
            info = run_info(run_dir)
        except GanStudioError:
            info = {}
        step = info.get("checkpoint_step")
        step = int(step if step is not None else info.get("step", 0))
        if config.steps is None:
            return None  # a run limited by minutes keeps its limit
        return config.steps if step < config.steps else step + max(100, step // 2)

    def apply_stop_fix(self, run_dir: Path, finding: Finding) -> str:
        """Stop the run (when it trains) and say which checkpoint to keep; returns that sentence."""
        text = best_checkpoint_words(run_dir, finding)
        if self.is_running() and self.run_dir == run_dir:
            self.stop()
            text = "Stopping (a checkpoint is saved). " + text
        card = self.findings_panel.card_for(finding.detector)
        if card is not None:
            card.show_outcome(text)
        self._append_log(text)
        self.sig_status.emit(text)
        return text

    def apply_family_fix(self, run_dir: Path, finding: Finding, fix: Fix) -> bool:
        """Prefill a new run with the fix's family on the same dataset; the user presses Start."""
        family = str(fix.settings.get("family", ""))
        index = self.family_combo.findData(family)
        if index < 0:
            self.errors.report(f"The suggested family '{family}' is not available in this version.")
            return False
        try:
            dataset = read_run_config(run_dir).dataset
        except GanStudioError:
            dataset = ""
        if dataset and dataset != str(self.dataset_dir() or ""):
            self.select_dataset(dataset)  # re-lists the project's datasets first
        self.family_combo.setCurrentIndex(index)  # applies the family's preset settings
        where = Path(dataset).name or "this dataset"
        text = f"A new {family} run on {where} is set up: check its settings and press Start training."
        if self.is_running():
            text += " (Stop the current run first.)"
        card = self.findings_panel.card_for(finding.detector)
        if card is not None:
            card.show_outcome(text)
        self.sig_status.emit(text)
        return True

    # -- find good settings ------------------------------------------------------------------------
    def open_tune_dialog(self) -> TuneDialog | None:
        """Open "Find good settings" for the page's dataset, family and settings."""
        if self.tune_dialog is not None:
            self.tune_dialog.show()
            self.tune_dialog.raise_()
            return self.tune_dialog
        try:
            config = self.build_config()
        except GanStudioError as exc:
            self.errors.report(gui_message(exc))
            return None
        dialog = TuneDialog(Path(config.dataset), config, self.project.runs_dir, parent=self)
        dialog.sig_use_settings.connect(self.use_tuned_settings)
        dialog.sig_running_changed.connect(lambda _: self._update_buttons())
        dialog.finished.connect(self._on_tune_dialog_closed)
        self.tune_dialog = dialog
        dialog.show()
        self._update_buttons()
        return dialog

    def _on_tune_dialog_closed(self, _result: int) -> None:
        if self.tune_dialog is not None and not self.tune_dialog.is_running():
            self.tune_dialog.deleteLater()
            self.tune_dialog = None
        self._update_buttons()

    def use_tuned_settings(self, settings: dict[str, Any]) -> None:
        """Fill the forms with a tune's best settings (TrainConfig overrides)."""
        self.train_form.set_values({k: v for k, v in settings.items() if k != "family_options"})
        self.family_form.set_values(settings.get("family_options", {}))
        if not self.advanced_button.isChecked():
            self.advanced_button.setChecked(True)  # show what changed
        labels = field_labels(TrainConfig)
        words = ", ".join(f"{labels.get(k, k)} {_short(v)}" for k, v in settings.items() if k != "family_options")
        self.sig_status.emit(f"Settings from Find good settings: {words}")

    # -- worker signals (GUI thread) --------------------------------------------------------------
    def _on_step(self, stats: dict[str, Any]) -> None:
        if not self.latest_stats:  # first step: the run folder exists now, so list it
            self.refresh_runs(select=self.run_dir)
        self.latest_stats = stats
        self.chart.add(stats)
        self._stats_dirty = True

    def _on_preview(self, grid: Any, step: int) -> None:
        self.preview.push(grid, step)

    def _on_checkpoint(self, path: str) -> None:
        self.last_checkpoint = path
        self._append_log(f"Checkpoint saved: {Path(path).name}")
        if self.run_dir is not None:
            self.sig_checkpoint_saved.emit(str(self.run_dir))

    def _append_log(self, message: str) -> None:
        self.log.appendPlainText(f"{datetime.now():%H:%M:%S}  {message}")

    def _on_finished(self, result: RunResult) -> None:
        self.result = result
        self._stats_dirty = True
        verb = "Stopped" if result.stopped else "Finished"
        self.sig_status.emit(f"{verb} {result.run_dir.name} at step {result.step:,}; checkpoint saved.")

    def _on_failed(self, message: str, details: str) -> None:
        self._append_log(f"Error: {message}")
        self.errors.report(message, details)

    def _on_health(self, finding: Finding) -> None:
        self.health_strip.add_finding(finding)
        self.findings_panel.add_finding(finding)
        self._fit_findings()
        if finding.level != "ok":
            self.sig_status.emit(f"Training doctor ({finding.level}): {finding.message}")

    def _on_thread_finished(self) -> None:
        if self.thread is None:
            return  # already handled by shutdown()
        run_dir, ended_with_checkpoint = self.run_dir, self.result is not None and self.result.checkpoint is not None
        self.thread.deleteLater()
        self.worker, self.thread = None, None
        self._refresh_stats()
        self._show_end_of_run()
        self.refresh_runs(select=run_dir)
        self._update_buttons()
        self.sig_job.emit("", 0, 0)
        self.sig_running_changed.emit(False)
        if ended_with_checkpoint and run_dir is not None:
            self.sig_run_finished.emit(str(run_dir))
        pending, self._pending_fix = self._pending_fix, None
        if pending is not None and ended_with_checkpoint:  # a fix stopped the run: resume it with the fix
            self.resume_run(*pending)

    def _show_end_of_run(self) -> None:
        """After the thread ended: the step is the final checkpoint's, the bar says so, no time is left."""
        if self.result is None:
            self.stat_labels["state"].setText("failed")
            self.stat_labels["eta"].setText("-")
            return
        step = checkpoint_step(self.result.checkpoint) if self.result.checkpoint else None
        step = self.result.step if step is None else step
        self._show_stats({**self.latest_stats, "step": step, "eta_seconds": None}, self.target_steps)
        self._show_ended(step, self.target_steps, stopped=self.result.stopped)

    def _refresh_stats(self) -> None:
        self._update_running_item()
        if not self._stats_dirty:
            return
        self._stats_dirty = False
        self._show_stats(self.latest_stats, self.target_steps)
        if self.is_running() and self.worker is not None and not self.worker.paused and not self.worker.stopping:
            self.stat_labels["state"].setText("training")
        self._emit_job()

    def _emit_job(self) -> None:
        """The status bar's job: training, or saving the checkpoint after Stop (until the thread ends)."""
        if not self.is_running() or self.run_dir is None:
            return
        step = int(self.latest_stats.get("step", 0))
        saving = self.worker is not None and self.worker.stopping
        text = f"Saving checkpoint of {self.run_dir.name}…" if saving else f"Training {self.run_dir.name}"
        self.sig_job.emit(text, step, self.target_steps or 0)

    def _update_running_item(self) -> None:
        """The running run's entry in the list shows its current step and newest preview."""
        if not self.is_running() or self.run_dir is None:
            return
        item = self._run_list_item(self.run_dir)
        if item is None:
            return
        step = int(self.latest_stats.get("step", 0))
        state = "saving checkpoint…" if self.worker is not None and self.worker.stopping else "training"
        family, dataset = self.run_names
        item.setText(_run_text(self.run_dir, family, step, self.target_steps, dataset, state))
        latest = self.preview.latest
        if latest is not None and latest is not self._icon_image:
            self._icon_image = latest
            item.setIcon(QIcon(QPixmap.fromImage(latest)))

    def _run_list_item(self, run_dir: Path) -> QListWidgetItem | None:
        for row in range(self.runs_list.count()):
            item = self.runs_list.item(row)
            if item.data(RUN_ROLE) == str(run_dir):
                return item
        return None

    def _show_stats(self, stats: dict[str, Any], target: int | None) -> None:
        step = int(stats.get("step", 0))
        self.stat_labels["step"].setText(f"{step:,}" + (f" / {target:,}" if target else ""))
        self.stat_labels["speed"].setText(f"{stats['img_per_sec']:.0f}" if "img_per_sec" in stats else "-")
        per_epoch = stats.get("seconds_per_epoch")
        short = per_epoch is not None and per_epoch < 10  # a small dataset on a fast device: tenths matter
        self.stat_labels["epoch"].setText(f"{per_epoch:.1f} s" if short else format_seconds(per_epoch))
        done = f" ({stats['epoch']:.1f} epochs so far)" if "epoch" in stats else ""
        self.stat_labels["epoch"].setToolTip(f"Time for one pass over the dataset{done}")
        self.stat_labels["eta"].setText(format_seconds(stats.get("eta_seconds")))
        self.stat_labels["augment"].setText(f"{stats['augment_p']:.2f}" if "augment_p" in stats else "-")
        self.progress.setRange(0, max(1, target or step or 1))
        self.progress.setValue(step)

    def shutdown(self, timeout_ms: int = 120_000) -> bool:
        """Stop a run (and a tune) and wait for its checkpoint (window closing); True when the thread ended."""
        self._pending_fix = None
        if self.tune_dialog is not None and not self.tune_dialog.shutdown(timeout_ms):
            return False
        if self.worker is None or self.thread is None:
            return True
        self.worker.stop()
        self.worker.resume()
        ended = self.thread.wait(timeout_ms)
        if ended:
            QCoreApplication.processEvents()  # deliver the worker's last signals (result, checkpoint)
            self._on_thread_finished()
        return ended


def _disclosure_button(text: str, tip: str) -> QToolButton:
    """A checkable arrow button that shows and hides a part of the settings column (closed: arrow right)."""
    button = QToolButton()
    button.setText(text)
    button.setCheckable(True)
    button.setArrowType(Qt.ArrowType.RightArrow)
    button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
    button.setToolTip(tip)
    return button


def _short(value: Any) -> str:
    """A setting's value for a status line: floats to 3 significant digits (a tuned rate is 0.00186, not 17)."""
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def _gpu_count() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def _findings_until_checkpoint(run_dir: Path) -> list[Finding]:
    """The run's findings up to the checkpoint a resume starts from (it judges the later steps again)."""
    try:
        step = run_info(run_dir).get("checkpoint_step")
    except GanStudioError:
        step = None
    findings = read_health(run_dir)
    return findings if step is None else [f for f in findings if f.step <= int(step)]


def best_checkpoint_words(run_dir: Path, finding: Finding) -> str:
    """Which checkpoint to keep after a finding says stop: the best-KD one it names, else the newest
    before the finding's step, in one sentence."""
    evidence = finding.evidence
    if evidence.get("best_step") is not None:
        named = str(evidence.get("checkpoint") or "checkpoints/best-kid.pt")
        return f"The best checkpoint is step {int(evidence['best_step']):,} ({named} in {run_dir.name})."
    earlier = [p for p in list_checkpoints(run_dir) if (checkpoint_step(p) or 0) < finding.step]
    if not earlier:
        return (
            f"No checkpoint from before step {finding.step:,} is kept in {run_dir.name}; "
            "the newest one is the best there is."
        )
    best = earlier[-1]
    return (
        f"Keep checkpoint {best.name} (step {checkpoint_step(best):,}, before step {finding.step:,}) in {run_dir.name}."
    )


def _scrolled(widget: QWidget) -> QScrollArea:
    area = QScrollArea()
    area.setWidgetResizable(True)
    area.setWidget(widget)
    return area


def _run_item(run_dir: Path) -> QListWidgetItem:
    """A list entry for a run: name, family, progress and dataset, with its newest preview as icon."""
    try:
        info = run_info(run_dir)
    except (GanStudioError, OSError, ValueError) as exc:
        item = QListWidgetItem(f"{run_dir.name}\n(cannot be read: {exc})")
        item.setFlags(Qt.ItemFlag.NoItemFlags)
        return item
    step = info["checkpoint_step"] if info.get("checkpoint_step") is not None else info["step"]
    item = QListWidgetItem(_run_text(run_dir, info["family"], step, info.get("steps_target"), info["dataset"]))
    if info.get("latest_preview"):
        item.setIcon(QIcon(QPixmap(info["latest_preview"])))
    item.setData(RUN_ROLE, str(run_dir))
    item.setToolTip(f"{run_dir}\ncheckpoints: {', '.join(info['checkpoints']) or 'none'}")
    return item


def _run_text(run_dir: Path, family: str, step: int, target: int | None, dataset: str, state: str = "") -> str:
    """A run's list entry: name, then family, step (of the target), dataset and, while it trains, its state."""
    parts = [family, f"step {step:,}" + (f" / {target:,}" if target else "")]
    parts += [Path(dataset).name] if dataset else []
    parts += [state] if state else []
    return f"{run_dir.name}\n" + " · ".join(parts)
