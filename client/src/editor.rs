//! The line editor: rustyline set up for chatting.

use anyhow::Context;
use rustyline::history::DefaultHistory;
use rustyline::{
    Cmd, ColorMode, CompletionType, ConditionalEventHandler, Config, Editor, Event, EventContext,
    EventHandler, KeyEvent, Movement, RepeatCount,
};

use crate::complete::ChatHelper;
use crate::history;

pub type ChatEditor = Editor<ChatHelper, DefaultHistory>;

/// The terminal, ready for editing: made before connecting so that a terminal rustyline cannot
/// drive (say `TERM=dumb`) falls back to piped mode.
pub struct Terminal {
    pub editor: ChatEditor,
    pub printer: Box<dyn rustyline::ExternalPrinter + Send>,
}

impl Terminal {
    pub fn open() -> anyhow::Result<Self> {
        let config = Config::builder()
            .max_history_size(history::MAX_LINES)
            .context("history size")?
            .auto_add_history(false)
            .completion_type(CompletionType::List)
            // rustyline calls the highlighter only with colours on, and the highlighter is what
            // hides a password (crate::complete): on even with NO_COLOR. It adds no colour.
            .color_mode(ColorMode::Forced)
            .build();
        let mut editor = ChatEditor::with_config(config)?;
        editor.bind_sequence(
            KeyEvent::ctrl('C'),
            EventHandler::Conditional(Box::new(CtrlC)),
        );
        let printer = Box::new(editor.create_external_printer()?);
        Ok(Self { editor, printer })
    }
}

/// Ctrl-C clears the line being typed, as in bash; on an empty line it interrupts (quits).
struct CtrlC;

impl ConditionalEventHandler for CtrlC {
    fn handle(
        &self,
        _keys: &Event,
        _count: RepeatCount,
        _positive: bool,
        ctx: &EventContext,
    ) -> Option<Cmd> {
        if ctx.line().is_empty() {
            Some(Cmd::Interrupt)
        } else {
            Some(Cmd::Kill(Movement::WholeBuffer))
        }
    }
}
