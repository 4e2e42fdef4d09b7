//! Running parsed layout commands: the current page, the flow cursor and page breaks.
//!
//! The result is a list of pages of [`Op`]s in absolute points from the top-left of the
//! page, with every page number already written in; [`pdf`](crate::pdf) only encodes them.

use crate::fonts::{self, Font};
use crate::layout::{Align, Command, Located};

/// An A4 page in points.
pub const PAGE_WIDTH: f64 = 595.0;
pub const PAGE_HEIGHT: f64 = 842.0;

/// Where flowed content starts on a page and how far down it may go, before a `flow`
/// command says otherwise.
const DEFAULT_FLOW_TOP: f64 = 50.0;
const DEFAULT_FLOW_BOTTOM: f64 = 792.0;

/// One thing drawn on a page; coordinates in points from the top-left corner.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Op {
    /// `x` is where the text starts (alignment already applied), `y` its baseline;
    /// `text` is WinAnsi-encoded.
    Text {
        font: Font,
        size: f64,
        gray: f64,
        x: f64,
        y: f64,
        text: Vec<u8>,
    },
    Line {
        x1: f64,
        y1: f64,
        x2: f64,
        y2: f64,
        width: f64,
        gray: f64,
    },
    FillRect {
        x: f64,
        y: f64,
        width: f64,
        height: f64,
        gray: f64,
    },
    StrokeRect {
        x: f64,
        y: f64,
        width: f64,
        height: f64,
        line_width: f64,
        gray: f64,
    },
}

/// A page number waiting for the page count: resolved into an [`Op::Text`] at the end.
#[derive(Debug, Clone)]
enum Pending {
    Done(Op),
    PageNumber {
        align: Align,
        font: Font,
        size: f64,
        gray: f64,
        x: f64,
        y: f64,
        format: String,
    },
}

/// The graphics state drawing commands change.
#[derive(Debug, Clone, Copy)]
struct Style {
    font: Font,
    size: f64,
    fill_gray: f64,
    stroke_gray: f64,
    line_width: f64,
}

impl Default for Style {
    fn default() -> Self {
        Style {
            font: Font::Helvetica,
            size: 10.0,
            fill_gray: 0.0,
            stroke_gray: 0.0,
            line_width: 1.0,
        }
    }
}

struct Flow {
    pages: Vec<Vec<Pending>>,
    style: Style,
    top: f64,
    bottom: f64,
    cursor: f64,
    repeat: Option<(f64, Vec<Located>)>,
    every_page: Vec<Located>,
}

/// Runs a parsed layout; always returns at least one page.
pub(crate) fn run(program: &[Located]) -> Vec<Vec<Op>> {
    let mut flow = Flow {
        pages: vec![Vec::new()],
        style: Style::default(),
        top: DEFAULT_FLOW_TOP,
        bottom: DEFAULT_FLOW_BOTTOM,
        cursor: DEFAULT_FLOW_TOP,
        repeat: None,
        every_page: Vec::new(),
    };
    for located in program {
        flow.command(&located.command);
    }
    flow.finish()
}

impl Flow {
    fn command(&mut self, command: &Command) {
        match command {
            Command::Page => self.new_page(),
            Command::Flow { top, bottom } => {
                self.top = *top;
                self.bottom = *bottom;
            }
            Command::Cursor(y) => self.cursor = *y,
            Command::Space(height) => self.cursor += height,
            Command::Need(height) => self.make_room(*height),
            Command::Block { height, body } => {
                self.make_room(*height);
                let mut style = self.style;
                let page = self.pages.last_mut().expect("there is always a page");
                draw_all(page, &mut style, body, self.cursor);
                self.cursor += height;
            }
            Command::Repeat { height, body } => self.repeat = Some((*height, body.clone())),
            Command::RepeatOff => self.repeat = None,
            Command::EveryPage { body } => self.every_page.extend(body.iter().cloned()),
            drawing => {
                let page = self.pages.last_mut().expect("there is always a page");
                draw(page, &mut self.style, drawing, 0.0);
            }
        }
    }

    /// Starts a new page if `height` does not fit between the cursor and the bottom.
    /// Only when a new page would start higher than we are now: a block taller than a
    /// whole page is drawn once, overflowing, instead of breaking forever.
    fn make_room(&mut self, height: f64) {
        let fresh_page_start = self.top + self.repeat.as_ref().map_or(0.0, |(height, _)| *height);
        if self.cursor + height > self.bottom && self.cursor > fresh_page_start {
            self.new_page();
        }
    }

    fn new_page(&mut self) {
        self.pages.push(Vec::new());
        self.cursor = self.top;
        if let Some((height, body)) = &self.repeat {
            let page = self.pages.last_mut().expect("just pushed");
            draw_all(page, &mut Style::default(), body, self.cursor);
            self.cursor += height;
        }
    }

    /// Puts the `every-page` commands under each page's content and writes the page numbers.
    fn finish(self) -> Vec<Vec<Op>> {
        let count = self.pages.len();
        self.pages
            .into_iter()
            .enumerate()
            .map(|(index, content)| {
                let mut page = Vec::new();
                draw_all(&mut page, &mut Style::default(), &self.every_page, 0.0);
                page.extend(content);
                page.into_iter()
                    .map(|pending| resolve(pending, index + 1, count))
                    .collect()
            })
            .collect()
    }
}

fn draw_all(page: &mut Vec<Pending>, style: &mut Style, body: &[Located], offset_y: f64) {
    for located in body {
        draw(page, style, &located.command, offset_y);
    }
}

/// Draws one drawing command with its y coordinates moved down by `offset_y`.
fn draw(page: &mut Vec<Pending>, style: &mut Style, command: &Command, offset_y: f64) {
    let op = match command {
        Command::Font { font, size } => {
            style.font = *font;
            style.size = *size;
            return;
        }
        Command::FillGray(gray) => {
            style.fill_gray = *gray;
            return;
        }
        Command::StrokeGray(gray) => {
            style.stroke_gray = *gray;
            return;
        }
        Command::LineWidth(width) => {
            style.line_width = *width;
            return;
        }
        Command::Text { align, x, y, text } => text_op(style, *align, *x, y + offset_y, text),
        Command::PageNumber {
            align,
            x,
            y,
            format,
        } => {
            page.push(Pending::PageNumber {
                align: *align,
                font: style.font,
                size: style.size,
                gray: style.fill_gray,
                x: *x,
                y: y + offset_y,
                format: format.clone(),
            });
            return;
        }
        Command::Line { x1, y1, x2, y2 } => Op::Line {
            x1: *x1,
            y1: y1 + offset_y,
            x2: *x2,
            y2: y2 + offset_y,
            width: style.line_width,
            gray: style.stroke_gray,
        },
        Command::FillRect {
            x,
            y,
            width,
            height,
        } => Op::FillRect {
            x: *x,
            y: y + offset_y,
            width: *width,
            height: *height,
            gray: style.fill_gray,
        },
        Command::StrokeRect {
            x,
            y,
            width,
            height,
        } => Op::StrokeRect {
            x: *x,
            y: y + offset_y,
            width: *width,
            height: *height,
            line_width: style.line_width,
            gray: style.stroke_gray,
        },
        // The parser keeps flow commands out of bodies; at top level `Flow::command`
        // handles them before drawing is reached.
        Command::Page
        | Command::Flow { .. }
        | Command::Cursor(_)
        | Command::Space(_)
        | Command::Need(_)
        | Command::Block { .. }
        | Command::Repeat { .. }
        | Command::RepeatOff
        | Command::EveryPage { .. } => return,
    };
    page.push(Pending::Done(op));
}

fn text_op(style: &Style, align: Align, x: f64, y: f64, text: &str) -> Op {
    let encoded = fonts::encode(text);
    let width = style.font.encoded_width(&encoded, style.size);
    let start = match align {
        Align::Left => x,
        Align::Right => x - width,
        Align::Center => x - width / 2.0,
    };
    Op::Text {
        font: style.font,
        size: style.size,
        gray: style.fill_gray,
        x: start,
        y,
        text: encoded,
    }
}

fn resolve(pending: Pending, page: usize, pages: usize) -> Op {
    match pending {
        Pending::Done(op) => op,
        Pending::PageNumber {
            align,
            font,
            size,
            gray,
            x,
            y,
            format,
        } => {
            let text = format
                .replace("{pages}", &pages.to_string())
                .replace("{page}", &page.to_string());
            text_op(
                &Style {
                    font,
                    size,
                    fill_gray: gray,
                    ..Style::default()
                },
                align,
                x,
                y,
                &text,
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::parse;

    fn pages(source: &str) -> Vec<Vec<Op>> {
        run(&parse(source).expect("parses"))
    }

    fn texts(page: &[Op]) -> Vec<(String, f64, f64)> {
        page.iter()
            .filter_map(|op| match op {
                Op::Text { text, x, y, .. } => {
                    Some((String::from_utf8_lossy(text).into_owned(), *x, *y))
                }
                _ => None,
            })
            .collect()
    }

    #[test]
    fn blocks_flow_down_and_break_to_a_new_page_with_the_repeated_header() {
        let mut source =
            String::from("flow 100 200\ncursor 150\nrepeat 10\ntext 0 8 \"head\"\nend\n");
        for index in 0..6 {
            source.push_str(&format!("block 30\ntext 0 20 \"row {index}\"\nend\n"));
        }
        let pages = pages(&source);
        // Page 1: a row at 150; the next would end at 210, below 200. Page 2: the header
        // at 100, rows at 110, 140 and 170 (ending exactly at 200 still fits). Page 3: the rest.
        let rows: Vec<_> = pages.iter().map(|page| texts(page)).collect();
        assert_eq!(rows[0], [("row 0".to_string(), 0.0, 170.0)]);
        assert_eq!(
            rows[1],
            [
                ("head".to_string(), 0.0, 108.0),
                ("row 1".to_string(), 0.0, 130.0),
                ("row 2".to_string(), 0.0, 160.0),
                ("row 3".to_string(), 0.0, 190.0),
            ]
        );
        assert_eq!(rows[2].len(), 3);
        assert_eq!(pages.len(), 3);
    }

    #[test]
    fn a_block_taller_than_a_page_is_drawn_once_not_broken_forever() {
        let pages = pages(
            "flow 100 200\nblock 500\ntext 0 0 \"big\"\nend\nblock 500\ntext 0 0 \"big\"\nend\n",
        );
        assert_eq!(pages.len(), 2);
    }

    #[test]
    fn need_breaks_before_what_would_not_fit_and_leaves_the_cursor_alone() {
        let source = "flow 100 200\ncursor 150\nneed 60\nblock 10\ntext 0 5 \"a\"\nend\nneed 10\nblock 10\ntext 0 5 \"b\"\nend\n";
        let pages = pages(source);
        assert_eq!(pages.len(), 2);
        assert!(texts(&pages[0]).is_empty());
        assert_eq!(
            texts(&pages[1]),
            [("a".to_string(), 0.0, 105.0), ("b".to_string(), 0.0, 115.0)]
        );
    }

    #[test]
    fn every_page_and_page_numbers_are_on_each_page() {
        let pages = pages(
            "every-page\npage-number right 500 820 \"{page}/{pages}\"\nend\npage\nfont helvetica-bold 20\npage\n",
        );
        assert_eq!(pages.len(), 3);
        for (index, page) in pages.iter().enumerate() {
            let texts = texts(page);
            assert_eq!(texts.len(), 1);
            assert_eq!(texts[0].0, format!("{}/3", index + 1));
            // every-page starts from the default style, so the bold 20 does not leak in.
            let width = Font::Helvetica.text_width(&texts[0].0, 10.0);
            assert!((texts[0].1 + width - 500.0).abs() < 1e-9);
        }
    }

    #[test]
    fn style_changed_inside_a_block_stays_inside_it() {
        let pages = pages(
            "font helvetica 9\nblock 10\nfont helvetica-bold 12\ntext 0 0 \"in\"\nend\ntext 0 0 \"out\"\n",
        );
        let sizes: Vec<_> = pages[0]
            .iter()
            .filter_map(|op| match op {
                Op::Text { font, size, .. } => Some((*font, *size)),
                _ => None,
            })
            .collect();
        assert_eq!(sizes, [(Font::HelveticaBold, 12.0), (Font::Helvetica, 9.0)]);
    }

    #[test]
    fn right_and_center_alignment_use_the_font_widths() {
        let pages = pages("font helvetica 10\ntext-right 100 0 \"Wa\"\ntext-center 100 0 \"Wa\"\n");
        let texts = texts(&pages[0]);
        // W 944 + a 556 = 1500 units = 15 pt at size 10.
        assert_eq!(texts[0].1, 85.0);
        assert_eq!(texts[1].1, 92.5);
    }
}
