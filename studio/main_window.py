"""The main window: a sidebar of pages, menus with keyboard shortcuts, and a status bar showing the
device, memory in use and the running job. It owns the project and closes it (and itself) cleanly:
a running training run is asked about, checkpointed and stopped first.

The window shows before the engine is loaded: this module imports neither PyTorch, onnxruntime,
pyqtgraph nor the pages (tests/studio/test_startup.py checks it). Until the background import of
studio.engine_loader is done, every page slot shows "Loading the engine…" and the actions that need
a page are disabled; then the pages are built, on the GUI thread, and ``sig_engine_ready`` fires.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from PySide6.QtCore import QSettings, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QCloseEvent, QDragEnterEvent, QDropEvent, QIcon, QKeySequence, QShowEvent
from PySide6.QtWidgets import (
    QApplication,
    QDialog,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMainWindow,
    QMessageBox,
    QProgressBar,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from engine.errors import GanStudioError
from engine.gpu_stats import read_gpu_stats  # imports neither torch nor pynvml until asked
from engine.runs.info import run_kind
from studio import gc_guard
from studio.engine_loader import LOADING_TEXT, EngineLoader, engine_loader
from studio.errors import ErrorReporter
from studio.paths import icon_path
from studio.project import Project
from studio.qt_compat import install_refcount_guard
from studio.settings import add_recent_project, app_settings, recent_projects
from studio.sysinfo import gpu_memory, memory_summary
from studio.theme import DEFAULT_THEME, THEMES, apply_theme, get_theme

if TYPE_CHECKING:
    from studio.pages.dataset import DatasetPage
    from studio.pages.edit import EditPage
    from studio.pages.generate import GeneratePage
    from studio.pages.models import ModelsPage
    from studio.pages.train import TrainPage
    from studio.pages.translate import TranslatePage
    from studio.pages.upscale import UpscalePage

PAGES = (
    ("dataset", "Dataset"),
    ("train", "Train"),
    ("generate", "Generate"),
    ("translate", "Translate"),
    ("upscale", "Upscale"),
    ("models", "Models"),
    ("edit", "Edit"),
)
LATER_PAGES: tuple[tuple[str, str], ...] = ()
KIND_PAGES = {"generate": "generate", "translate": "translate", "upscale": "upscale"}
"""The page that uses each kind of run (engine.runs.info.run_kind)."""
LATER_TOOLTIP = "{title}: coming in a later release"
MEMORY_MS = 2000
CHECK_IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".bmp", ".gif"})
"""What a drop on the window opens in the Check image tool."""


def _dropped_images(event: QDragEnterEvent | QDropEvent) -> list[Path]:
    """The local image files (by extension) a drag carries."""
    mime = event.mimeData()
    if not mime.hasUrls():
        return []
    paths = [Path(url.toLocalFile()) for url in mime.urls() if url.isLocalFile()]
    return [p for p in paths if p.suffix.lower() in CHECK_IMAGE_SUFFIXES and p.is_file()]


class LoadingPanel(QWidget):
    """What every page slot shows until the engine is loaded: a message over a busy bar."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.message = QLabel(LOADING_TEXT)
        self.message.setObjectName("LoadingMessage")
        self.message.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.message.setWordWrap(True)
        self.busy = QProgressBar()
        self.busy.setRange(0, 0)  # busy: how long an import takes is unknown
        self.busy.setFixedWidth(240)
        self.busy.setTextVisible(False)
        layout = QVBoxLayout(self)
        layout.addStretch(1)
        layout.addWidget(self.message)
        layout.addWidget(self.busy, 0, Qt.AlignmentFlag.AlignHCenter)
        layout.addStretch(1)

    def show_failure(self, message: str) -> None:
        """The engine could not be loaded: say why, stop the busy bar."""
        self.message.setText(message)
        self.busy.setVisible(False)


class SavingDialog(QDialog):
    """Shown from the moment the user agrees to close during training until the run's thread has ended:
    the checkpoint is being written and the window will close by itself. It cannot be dismissed."""

    TEXT = "Saving checkpoint… GAN Studio closes as soon as the training run has stopped."

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Saving checkpoint…")
        self.setWindowModality(Qt.WindowModality.WindowModal)
        self.setWindowFlag(Qt.WindowType.WindowCloseButtonHint, False)
        self.message = QLabel(self.TEXT)
        self.message.setWordWrap(True)
        busy = QProgressBar()
        busy.setRange(0, 0)  # busy: a checkpoint takes as long as it takes
        busy.setTextVisible(False)
        layout = QVBoxLayout(self)
        layout.addWidget(self.message)
        layout.addWidget(busy)
        self._done = False

    def finish(self) -> None:
        """The run has ended: close for real."""
        self._done = True
        self.done(QDialog.DialogCode.Accepted)

    def reject(self) -> None:
        """Escape does nothing: closing waits for the checkpoint."""
        if self._done:
            super().reject()

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 (Qt name)
        """Only :meth:`finish` closes it."""
        if self._done:
            event.accept()
        else:
            event.ignore()


class MainWindow(QMainWindow):
    """GAN Studio's window over one open project; the pages appear once the engine is loaded."""

    sig_engine_ready = Signal()
    """The engine is loaded and every page is built: the window works fully from now on."""

    def __init__(
        self,
        project: Project,
        settings: QSettings | None = None,
        theme: str | None = None,
        loader: EngineLoader | None = None,
    ) -> None:
        super().__init__()
        gc_guard.install(QApplication.instance())  # collect cycles on this thread only (see gc_guard)
        install_refcount_guard()  # idempotent; PySide6 6.12.0 would otherwise abort during training
        self.project = project
        self.settings = settings or app_settings()
        self.theme_name = get_theme(theme or str(self.settings.value("theme", DEFAULT_THEME))).name
        self.errors = ErrorReporter(self, project.logs_dir)
        self._close_when_stopped = False
        self.saving_dialog: SavingDialog | None = None  # shown while closing waits for the checkpoint
        self._pending_project: Project | None = None
        self._jobs: dict[str, tuple[str, int, int]] = {}
        self.pages: dict[str, QWidget] = {}  # filled by _build_pages once the engine is loaded
        self._shut_down = False  # set by shutdown(): a window closed while loading never builds pages
        self.engine_actions: list[QAction] = []  # the actions that need a page: enabled with the pages
        self.check_dialog: Any = None  # studio.widgets.check_image.CheckImageDialog, made when first opened
        self.setAcceptDrops(True)  # an image dropped where no page takes it opens the Check image tool
        self.engine_loader = loader or engine_loader()
        self._build_central()
        self._build_status_bar()
        self._build_menus()
        self.setWindowIcon(QIcon(str(icon_path("app"))))
        self.resize(1400, 900)
        self._restore_state()
        self._set_title()
        if self.engine_loader.is_ready():  # a later window of the session: no loading state at all
            self._build_pages()
        elif self.engine_loader.error is not None:
            self._on_engine_failed(*self.engine_loader.error)
        else:
            self.engine_loader.sig_ready.connect(self._build_pages)
            self.engine_loader.sig_failed.connect(self._on_engine_failed)

    # -- the engine and the pages -----------------------------------------------------------------
    def showEvent(self, event: QShowEvent) -> None:  # noqa: N802 (Qt name)
        """Start loading the engine once the window is on screen (from the next event-loop turn, so
        the first paint does not share the CPU with the imports)."""
        super().showEvent(event)
        if not self.engine_loader.is_ready():
            QTimer.singleShot(0, self.engine_loader.start)

    def engine_ready(self) -> bool:
        """True once the pages are built (see ``sig_engine_ready``)."""
        return bool(self.pages)

    def _build_pages(self) -> None:
        # Imported here, not at the top: the page modules pull in PyTorch (see the module docstring).
        # By now the engine loader has imported them, so these lines cost nothing.
        from studio.pages.dataset import DatasetPage
        from studio.pages.edit import EditPage
        from studio.pages.generate import GeneratePage
        from studio.pages.models import ModelsPage
        from studio.pages.train import TrainPage
        from studio.pages.translate import TranslatePage
        from studio.pages.upscale import UpscalePage

        if self.pages or self._shut_down:
            return
        self.pages = {
            "dataset": DatasetPage(self.project, self.errors),
            "train": TrainPage(self.project, self.errors),
            "generate": GeneratePage(self.project, self.errors),
            "translate": TranslatePage(self.project, self.errors),
            "upscale": UpscalePage(self.project, self.errors),
            "models": ModelsPage(self.project, self.errors),
            "edit": EditPage(self.project, self.errors),
        }
        for index, (key, _) in enumerate(PAGES):
            self.stack.insertWidget(index, self.pages[key])  # before the loading panel, which stays last
        self._on_sidebar(self.sidebar.currentRow())
        self._connect_pages()
        self.train_page.chart.apply_theme(get_theme(self.theme_name))
        for action in self.engine_actions:
            action.setEnabled(True)
        self.device_label.setText(self.engine_loader.device)
        self._update_memory()
        self.sig_engine_ready.emit()

    def _on_engine_failed(self, message: str, details: str) -> None:
        self.loading_panel.show_failure(message)
        self.device_label.setText("Engine not loaded")
        self.errors.report(message, details)

    def _page(self, key: str) -> QWidget:
        if key not in self.pages:
            raise RuntimeError(f"the {key} page is built once the engine is loaded; wait for sig_engine_ready")
        return self.pages[key]

    @property
    def dataset_page(self) -> DatasetPage:
        """The Dataset page (once the engine is loaded)."""
        return cast("DatasetPage", self._page("dataset"))

    @property
    def train_page(self) -> TrainPage:
        """The Train page (once the engine is loaded)."""
        return cast("TrainPage", self._page("train"))

    @property
    def edit_page(self) -> EditPage:
        """The Edit page (once the engine is loaded)."""
        return cast("EditPage", self._page("edit"))

    @property
    def generate_page(self) -> GeneratePage:
        """The Generate page (once the engine is loaded)."""
        return cast("GeneratePage", self._page("generate"))

    @property
    def translate_page(self) -> TranslatePage:
        """The Translate page (once the engine is loaded)."""
        return cast("TranslatePage", self._page("translate"))

    @property
    def upscale_page(self) -> UpscalePage:
        """The Upscale page (once the engine is loaded)."""
        return cast("UpscalePage", self._page("upscale"))

    @property
    def models_page(self) -> ModelsPage:
        """The Models page (once the engine is loaded)."""
        return cast("ModelsPage", self._page("models"))

    # -- layout -----------------------------------------------------------------------------------
    def _build_central(self) -> None:
        self.sidebar = QListWidget()
        self.sidebar.setObjectName("Sidebar")
        self.sidebar.setFixedWidth(168)
        self.sidebar.setIconSize(QSize(22, 22))
        self.stack = QStackedWidget()
        self.loading_panel = LoadingPanel()
        self.stack.addWidget(self.loading_panel)
        for index, (key, title) in enumerate(PAGES):
            item = QListWidgetItem(QIcon(str(icon_path(key))), title)
            item.setToolTip(f"{title} (Ctrl+{index + 1})")
            self.sidebar.addItem(item)
        for key, title in LATER_PAGES:
            item = QListWidgetItem(QIcon(str(icon_path(key))), title)
            item.setFlags(Qt.ItemFlag.NoItemFlags)  # listed so the road ahead is visible; not a fake page
            item.setToolTip(LATER_TOOLTIP.format(title=title))
            self.sidebar.addItem(item)
        self.sidebar.currentRowChanged.connect(self._on_sidebar)
        central = QWidget()
        layout = QHBoxLayout(central)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.sidebar)
        layout.addWidget(self.stack, 1)
        self.setCentralWidget(central)
        self.sidebar.setCurrentRow(0)

    def _build_status_bar(self) -> None:
        bar = self.statusBar()
        self.job_label = QLabel("")
        self.job_progress = QProgressBar()
        self.job_progress.setFixedWidth(180)
        self.job_progress.setVisible(False)
        self.memory_label = QLabel("")
        self.memory_label.setToolTip("Memory used by GAN Studio (and by PyTorch on the GPU)")
        self.gpu_label = QLabel("")  # shown only while a GPU can be read (engine/gpu_stats.py)
        self.gpu_label.setVisible(False)
        self.device_label = QLabel(LOADING_TEXT)  # the device is known once the engine is loaded
        self.device_label.setToolTip("Where training and generation run")
        for widget in (self.job_label, self.job_progress, self.memory_label, self.gpu_label, self.device_label):
            bar.addPermanentWidget(widget)
        self.memory_timer = QTimer(self)
        self.memory_timer.setInterval(MEMORY_MS)
        self.memory_timer.timeout.connect(self._update_memory)
        self.memory_timer.start()
        self._update_memory()

    def _action(
        self,
        menu_name: str,
        text: str,
        slot: object,
        shortcut: str | QKeySequence | None = None,
        checkable: bool = False,
        needs_engine: bool = False,
    ) -> QAction:
        action = QAction(text, self)
        if shortcut:
            action.setShortcut(QKeySequence(shortcut))
            action.setToolTip(f"{text.rstrip('…')} ({QKeySequence(shortcut).toString()})")
        action.setCheckable(checkable)
        action.triggered.connect(slot)
        if needs_engine:
            self.engine_actions.append(action)
            action.setEnabled(self.engine_ready())
        self.menus[menu_name].addAction(action)
        self.addAction(action)  # shortcuts work whichever page has focus
        return action

    def _build_menus(self) -> None:
        bar = self.menuBar()
        self.menus = {name: bar.addMenu(name) for name in ("&File", "&View", "&Training", "&Generate", "&Help")}
        self._action("&File", "New Project…", self.new_project_dialog, "Ctrl+Shift+N")
        self._action("&File", "Open Project…", self.open_project_dialog, "Ctrl+Shift+O")
        self.recent_menu = self.menus["&File"].addMenu("Open Recent")
        self.recent_menu.aboutToShow.connect(self._fill_recent_menu)
        self.menus["&File"].addSeparator()
        # Actions that need a page call it through a lambda: the pages do not exist yet.
        page_action = self._page_action
        page_action("&File", "Import Images Folder…", self._import_folder, "Ctrl+O")
        page_action("&File", "Try the Sample Dataset", lambda: self.dataset_page.try_sample())
        page_action("&File", "Check Image…", lambda: self.check_image(), "Ctrl+Shift+K")
        self.menus["&File"].addSeparator()
        self._action("&File", "Quit", self.close, QKeySequence.StandardKey.Quit)
        for index, (key, title) in enumerate(PAGES):
            self._action("&View", title, lambda _=False, k=key: self.show_page(k), f"Ctrl+{index + 1}")
        self.menus["&View"].addSeparator()
        self.light_action = self._action("&View", "Light Theme", self._toggle_theme, "Ctrl+Shift+L", checkable=True)
        self.light_action.setChecked(self.theme_name == "light")
        page_action("&Training", "Start", self._start_training, "Ctrl+Return")
        page_action("&Training", "Pause / Continue", lambda: self.train_page.toggle_pause(), "Ctrl+P")
        page_action("&Training", "Stop", lambda: self.train_page.stop(), "Ctrl+.")
        page_action("&Generate", "Export Images…", lambda: self.generate_page.export_batch(), "Ctrl+E")
        page_action("&Generate", "Copy Seeds", lambda: self.generate_page.copy_seeds(), "Ctrl+Shift+C")
        self._action("&Help", "Keyboard Shortcuts", self.show_shortcuts, "F1")
        self._action("&Help", "About GAN Studio", self.show_about)

    def _page_action(
        self, menu_name: str, text: str, slot: object, shortcut: str | QKeySequence | None = None
    ) -> QAction:
        return self._action(menu_name, text, slot, shortcut, needs_engine=True)

    def _connect_pages(self) -> None:
        self.dataset_page.sig_dataset_changed.connect(self._on_dataset_changed)
        self.dataset_page.sig_attested.connect(lambda _: self.train_page.refresh_consent())
        self.dataset_page.sig_sample_ready.connect(self.train_sample)
        self.train_page.sig_consent_requested.connect(self._open_consent)
        self.train_page.sig_run_finished.connect(self._on_run_finished)
        self.train_page.sig_checkpoint_saved.connect(self._on_checkpoint_saved)
        self.models_page.sig_exported.connect(self._on_exported)
        self.models_page.sig_open_run.connect(self.open_run)
        self.train_page.sig_running_changed.connect(self._on_training_changed)
        for key, page in self.pages.items():
            page.sig_status.connect(self.show_status)
            page.sig_job.connect(lambda text, done, total, k=key: self._on_job(k, text, done, total))
        self.errors.sig_reported.connect(self.show_status)

    # -- navigation -------------------------------------------------------------------------------
    def show_page(self, key: str) -> None:
        """Switch to page ``key`` (dataset, train, generate, models)."""
        self.sidebar.setCurrentRow([k for k, _ in PAGES].index(key))

    def current_page(self) -> str:
        """Key of the page chosen in the sidebar (shown once the engine is loaded)."""
        return PAGES[max(0, self.sidebar.currentRow())][0]

    def _on_sidebar(self, row: int) -> None:
        if 0 <= row < len(PAGES) and self.pages:  # before that the loading panel stays in view
            self.stack.setCurrentIndex(row)

    def show_status(self, text: str) -> None:
        """Show a message in the status bar for a while."""
        self.statusBar().showMessage(text.splitlines()[0] if text else "", 10_000)

    def _on_job(self, key: str, text: str, done: int, total: int) -> None:
        if text:
            self._jobs[key] = (text, done, total)
        else:
            self._jobs.pop(key, None)
        if not self._jobs:
            self.job_label.setText("")
            self.job_progress.setVisible(False)
            return
        text, done, total = self._jobs.get(key) or next(reversed(self._jobs.values()))
        self.job_label.setText(text)
        self.job_progress.setVisible(True)
        self.job_progress.setRange(0, total)  # 0..0: busy, total unknown
        self.job_progress.setValue(done)

    def _update_memory(self) -> None:
        # Microseconds with pynvml, so the GUI thread can ask every MEMORY_MS; without pynvml the
        # reader asks torch, but only once the engine loader has finished importing it.
        stats = read_gpu_stats(0, torch_fallback=self.engine_ready())
        # GPU memory needs torch: asking for it before the engine is loaded would import torch here.
        # With the GPU label showing, its whole-device figure replaces PyTorch's share in the memory
        # label (the share moves to the GPU label's tooltip): one GPU number in the bar, not two.
        self.memory_label.setText(memory_summary(gpu=self.engine_ready() and stats is None))
        self.gpu_label.setVisible(stats is not None)
        if stats is None:
            return
        self.gpu_label.setText(stats.describe())
        tip = stats.details()
        own = gpu_memory() if self.engine_ready() else None
        if own is not None:
            tip += f"\nGAN Studio (PyTorch) holds {own[0] / 2**30:.1f} GiB of it"
        self.gpu_label.setToolTip(tip)

    # -- the Check image tool ---------------------------------------------------------------------
    def check_image(self, path: Path | str | None = None) -> Any:
        """Show the Check image tool (one per window), checking ``path`` when given; returns the dialog."""
        from studio.widgets.check_image import CheckImageDialog  # imported when first used (start-up)

        if self.check_dialog is None:
            self.check_dialog = CheckImageDialog(self.errors, self)
        self.check_dialog.show()
        self.check_dialog.raise_()
        self.check_dialog.activateWindow()
        if path is not None:
            self.check_dialog.check(path)
        return self.check_dialog

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802 (Qt name)
        """Accept one image file dropped where no page takes it (once the engine is loaded)."""
        if self.engine_ready() and len(_dropped_images(event)) == 1:
            event.acceptProposedAction()
        else:
            event.ignore()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802 (Qt name)
        """Check the dropped image in the Check image tool."""
        images = _dropped_images(event)
        if not self.engine_ready() or len(images) != 1:
            event.ignore()
            return
        event.acceptProposedAction()
        self.check_image(images[0])

    # -- page wiring ------------------------------------------------------------------------------
    def _import_folder(self) -> None:
        self.show_page("dataset")
        self.dataset_page.choose_folder()

    def _on_dataset_changed(self, folder: str) -> None:
        if folder and not self.train_page.is_running():
            self.train_page.select_dataset(folder)

    def _open_consent(self, folder: str) -> None:
        self.show_page("dataset")
        self.dataset_page.open_consent(Path(folder))

    def _start_training(self) -> None:
        self.show_page("train")
        self.train_page.start()

    def train_sample(self, folder: str) -> None:
        """The sample is imported and attested: select it and start a quick run."""
        self.train_page.select_dataset(folder)
        self.train_page.set_preset("quick")
        self.show_page("train")
        self.train_page.start()

    def _on_run_finished(self, run: str) -> None:
        self._on_exported(run)
        self.models_page.refresh(select=run)

    def page_for_run(self, run: Path | str) -> str:
        """Key of the page that uses ``run``'s kind of model (generate, translate or upscale)."""
        return KIND_PAGES.get(run_kind(run), "generate")

    def _on_exported(self, run: str) -> None:
        """A run gained a checkpoint or an export: the page that uses its kind of model reloads it."""
        self._page(self.page_for_run(run)).refresh_runs(select=run)  # type: ignore[attr-defined]
        if self.page_for_run(run) == "generate":
            self.edit_page.refresh_runs()  # its previews move to onnxruntime once the export is current

    def open_run(self, run: str) -> None:
        """Show ``run`` on the page that uses its kind of model (the Models page's "Open in …")."""
        key = self.page_for_run(run)
        self._page(key).refresh_runs(select=run)  # type: ignore[attr-defined]
        self.show_page(key)

    def _on_checkpoint_saved(self, run: str) -> None:
        """A training run wrote a checkpoint: once it has one, the page for its kind of model lists it."""
        pages = [self._page(self.page_for_run(run))]
        if self.page_for_run(run) == "generate":
            pages.append(self.edit_page)
        for page in pages:
            if page.run_combo.findData(run) < 0:  # type: ignore[attr-defined]  # listed already: leave it alone
                page.refresh_runs()  # type: ignore[attr-defined]

    def _on_training_changed(self, running: bool) -> None:
        if running:
            return
        if self._pending_project is not None:
            project, self._pending_project = self._pending_project, None
            self._switch_project(project)
        if self._close_when_stopped:
            if self.saving_dialog is not None:
                self.saving_dialog.finish()
                self.saving_dialog = None
            QTimer.singleShot(0, self.close)

    # -- projects ---------------------------------------------------------------------------------
    def new_project_dialog(self) -> None:
        """Ask for a new (empty) folder and make it the open project."""
        folder = QFileDialog.getExistingDirectory(
            self, "New project: choose a new, empty folder", str(self.project.root.parent)
        )
        if folder:
            self._open_project(Project.create, Path(folder))

    def open_project_dialog(self) -> None:
        """Ask for a project folder and open it."""
        folder = QFileDialog.getExistingDirectory(self, "Open project", str(self.project.root.parent))
        if folder:
            self._open_project(Project.open, Path(folder))

    def open_project(self, folder: Path | str) -> bool:
        """Open the project in ``folder`` (after stopping training, when the user agrees)."""
        return self._open_project(Project.open, Path(folder))

    def _open_project(self, opener: object, folder: Path) -> bool:
        try:
            project = opener(folder)  # type: ignore[operator]
        except GanStudioError as exc:
            self.errors.report(str(exc))
            return False
        if self.engine_ready() and self.train_page.is_running():
            if not self.confirm_stop_training("open another project"):
                return False
            self._pending_project = project
            self.train_page.stop()
            return True
        self._switch_project(project)
        return True

    def _switch_project(self, project: Project) -> None:
        self.project = project
        self.errors.log_dir = project.logs_dir
        for page in self.pages.values():
            page.set_project(project)
        add_recent_project(self.settings, project.root)
        self._set_title()
        self.show_status(f"Opened project {project.root}")

    def _fill_recent_menu(self) -> None:
        self.recent_menu.clear()
        for folder in recent_projects(self.settings):
            action = self.recent_menu.addAction(str(folder))
            action.triggered.connect(lambda _=False, f=folder: self.open_project(f))
        self.recent_menu.setEnabled(True)

    def _set_title(self) -> None:
        self.setWindowTitle(f"GAN Studio — {self.project.name}")

    # -- theme, help ------------------------------------------------------------------------------
    def set_theme(self, name: str) -> None:
        """Switch the whole app to theme ``name`` and remember it."""
        theme = apply_theme(QApplication.instance(), name)  # type: ignore[arg-type]
        self.theme_name = theme.name
        if self.engine_ready():  # otherwise the chart takes the theme when it is built
            self.train_page.chart.apply_theme(theme)
        self.light_action.setChecked(theme.name == "light")
        self.settings.setValue("theme", theme.name)

    def _toggle_theme(self) -> None:
        self.set_theme("light" if self.theme_name == "dark" else "dark")

    def shortcut_lines(self) -> list[str]:
        """Every menu action with a shortcut, as ``Ctrl+1  Dataset`` lines."""
        lines = []
        for menu in self.menus.values():
            for action in menu.actions():
                if not action.shortcut().isEmpty():
                    lines.append(
                        f"{action.shortcut().toString(QKeySequence.SequenceFormat.NativeText):<16} "
                        f"{action.text().rstrip('…')}"
                    )
        return lines

    def show_shortcuts(self) -> None:
        """List the keyboard shortcuts."""
        box = QMessageBox(
            QMessageBox.Icon.Information, "Keyboard shortcuts", "\n".join(self.shortcut_lines()), parent=self
        )
        box.setStyleSheet("QLabel { font-family: monospace; }")
        box.open()

    def show_about(self) -> None:
        """A short About box."""
        QMessageBox.about(
            self,
            "About GAN Studio",
            "GAN Studio: train and use GANs on your own images, offline.\n"
            f"Project: {self.project.root}\nThemes: {', '.join(THEMES)}",
        )

    # -- closing ----------------------------------------------------------------------------------
    def confirm_stop_training(self, action: str = "close GAN Studio") -> bool:
        """Ask whether to stop the running training run (a checkpoint is saved first)."""
        answer = QMessageBox.question(
            self,
            "Training is running",
            f"A training run is in progress. To {action}, GAN Studio saves a checkpoint and stops the run; "
            "you can resume it later from the Train page.\n\nStop training now?",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
            QMessageBox.StandardButton.No,
        )
        return answer == QMessageBox.StandardButton.Yes

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 (Qt name)
        """Ask, checkpoint and stop training first; then save the window state and end the workers."""
        if self.engine_ready() and self.train_page.is_running():
            event.ignore()
            if not self._close_when_stopped and self.confirm_stop_training():
                self._close_when_stopped = True
                self.train_page.stop()
                self.statusBar().showMessage("Saving checkpoint… GAN Studio closes when the run has stopped.")
                self.saving_dialog = SavingDialog(self)
                self.saving_dialog.open()
            return
        self._save_state()
        self.shutdown()
        event.accept()

    def shutdown(self) -> None:
        """End every worker thread (a running run is stopped with a checkpoint)."""
        self.memory_timer.stop()
        self._shut_down = True
        if self.check_dialog is not None:
            self.check_dialog.shutdown()
        if not self.engine_ready():  # closed while the engine loads: there is nothing else to end
            return
        self.dataset_page.shutdown()
        self.train_page.shutdown()
        self.generate_page.shutdown()
        self.translate_page.shutdown()
        self.upscale_page.shutdown()
        self.models_page.shutdown()
        self.edit_page.shutdown()

    def _save_state(self) -> None:
        self.settings.setValue("window/geometry", self.saveGeometry())
        self.settings.setValue("window/state", self.saveState())
        self.settings.setValue("window/page", self.current_page())
        self.settings.setValue("theme", self.theme_name)
        add_recent_project(self.settings, self.project.root)
        self.settings.sync()

    def _restore_state(self) -> None:
        geometry = self.settings.value("window/geometry")
        if geometry is not None:
            self.restoreGeometry(geometry)
        state = self.settings.value("window/state")
        if state is not None:
            self.restoreState(state)
        page = str(self.settings.value("window/page", "dataset"))
        if page in dict(PAGES):
            self.show_page(page)
