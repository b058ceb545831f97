//! A tiny streaming walk over XML (quick-xml) for the GPX and TCX importers: element opens with
//! their attributes, text, and closes, by local name (namespace prefixes dropped).

use std::ops::ControlFlow;

use quick_xml::Reader;
use quick_xml::events::Event;

pub(super) enum Node<'a> {
    Open { name: &'a str, attributes: Vec<(String, String)> },
    Text(&'a str),
    Close { name: &'a str },
}

/// Calls `visit(stack, node)` for every node until it answers `Break`; `stack` holds the local
/// names of the open elements (for `Open`, including the element itself).
pub(super) fn walk(bytes: &[u8], mut visit: impl FnMut(&[String], Node<'_>) -> ControlFlow<()>) -> Result<(), String> {
    let mut reader = Reader::from_reader(bytes);
    let mut buf = Vec::new();
    let mut stack: Vec<String> = Vec::new();
    loop {
        let event =
            reader.read_event_into(&mut buf).map_err(|e| format!("at byte {}: {e}", reader.buffer_position()))?;
        let empty = matches!(event, Event::Empty(_));
        match event {
            Event::Start(e) | Event::Empty(e) => {
                let name = e.local_name().as_ref().to_owned();
                let attributes = e
                    .attributes()
                    .filter_map(Result::ok)
                    .map(|a| (a.key.local_name().as_ref().to_owned(), a.value.into_owned()))
                    .collect();
                stack.push(name.clone());
                if visit(&stack, Node::Open { name: &name, attributes }).is_break() {
                    return Ok(());
                }
                if empty {
                    stack.pop();
                    if visit(&stack, Node::Close { name: &name }).is_break() {
                        return Ok(());
                    }
                }
            }
            Event::Text(t) => {
                let text = t.trim();
                if !text.is_empty() && visit(&stack, Node::Text(text)).is_break() {
                    return Ok(());
                }
            }
            Event::End(_) => {
                if let Some(name) = stack.pop()
                    && visit(&stack, Node::Close { name: &name }).is_break()
                {
                    return Ok(());
                }
            }
            Event::Eof => return Ok(()),
            _ => {}
        }
        buf.clear();
    }
}
