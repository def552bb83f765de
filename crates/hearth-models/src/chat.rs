//! Chat templates: the Jinja program a model ships (in `tokenizer_config.json` or in a GGUF's
//! `tokenizer.chat_template`) that writes a conversation as the one string the model was
//! trained on, rendered with `minijinja` the way transformers renders it.
//!
//! transformers compiles a template in a sandboxed Jinja2 environment with `trim_blocks` and
//! `lstrip_blocks`, the `loopcontrols` extension, a `raise_exception(msg)` global and a
//! `tojson` filter that does not escape HTML; templates call Python string methods such as
//! `.strip()`. This module sets up the same: `minijinja`'s syntax options, `break`/`continue`,
//! `minijinja-contrib`'s Python methods, `raise_exception` as an error, and `tojson` without
//! the HTML escapes. transformers' `{% generation %}` block (which marks assistant text for
//! `return_assistant_tokens_mask`) is not Jinja; it is rewritten to an always-true `if`, since
//! the assistant spans here come from rendering prefixes instead (see
//! [`ChatTemplate::render_with_spans`]).

use std::ops::Range;
use std::sync::Arc;

use minijinja::value::Value;
use minijinja::{Environment, Error, ErrorKind};
use serde::{Deserialize, Serialize};

use crate::ModelError;

/// One turn of a conversation, as HF templates read it (`message['role']`,
/// `message['content']`).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// `system`, `user` or `assistant` (templates may know others, such as `tool`).
    pub role: String,
    /// The text of the turn.
    pub content: String,
}

impl Message {
    /// A message with `role` and `content`.
    pub fn new(role: impl Into<String>, content: impl Into<String>) -> Self {
        Self {
            role: role.into(),
            content: content.into(),
        }
    }
}

/// The role whose turns [`ChatTemplate::render_with_spans`] reports (the turns a supervised
/// fine-tune computes its loss on).
pub const ASSISTANT: &str = "assistant";

const NAME: &str = "chat_template";

/// A compiled chat template with the special tokens it may refer to.
#[derive(Clone)]
pub struct ChatTemplate {
    /// Shared: an environment is not `Clone`, and a compiled template never changes.
    env: Arc<Environment<'static>>,
    source: String,
    bos_token: String,
    eos_token: String,
}

impl std::fmt::Debug for ChatTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatTemplate")
            .field("source_len", &self.source.len())
            .field("bos_token", &self.bos_token)
            .field("eos_token", &self.eos_token)
            .finish()
    }
}

fn template_error(context: &str, e: &Error) -> ModelError {
    let mut message = format!("{context}: {e}");
    // minijinja keeps the template's own message (from `raise_exception`) as the detail and
    // chains the cause for errors raised inside filters and methods.
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        message.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    ModelError::ChatTemplate(message)
}

/// Rewrites transformers' `{% generation %}` … `{% endgeneration %}` (whitespace markers kept)
/// into an `if` that is always true, so templates written for assistant masks compile.
fn rewrite_generation_blocks(source: &str) -> String {
    // A literal pattern; it always compiles.
    let Ok(open) = regex::Regex::new(r"\{%([-+]?)\s*generation\s*([-+]?)%\}") else {
        return source.to_string();
    };
    let Ok(close) = regex::Regex::new(r"\{%([-+]?)\s*endgeneration\s*([-+]?)%\}") else {
        return source.to_string();
    };
    let opened = open.replace_all(source, "{%${1} if true ${2}%}");
    close
        .replace_all(&opened, "{%${1} endif ${2}%}")
        .into_owned()
}

/// Undoes the HTML-safety escapes of `minijinja`'s JSON writer (`<`, `>`, `&`, `'` as `\u00XX`),
/// so `tojson` writes what Python's `json.dumps(ensure_ascii=False)` writes. An escape is only
/// undone where its backslash is not itself escaped.
fn unescape_html_safe_json(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    let mut rest = json;
    while let Some(at) = rest.find('\\') {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        let replaced = match tail.get(..6) {
            Some("\\u003c") => Some('<'),
            Some("\\u003e") => Some('>'),
            Some("\\u0026") => Some('&'),
            Some("\\u0027") => Some('\''),
            _ => None,
        };
        match replaced {
            Some(c) => {
                out.push(c);
                rest = &tail[6..];
            }
            None => {
                // Copy the backslash and the character it escapes (possibly another backslash).
                let len = tail[1..].chars().next().map_or(1, |c| 1 + c.len_utf8());
                out.push_str(&tail[..len]);
                rest = &tail[len..];
            }
        }
    }
    out.push_str(rest);
    out
}

fn tojson(value: &Value, kwargs: minijinja::value::Kwargs) -> Result<Value, Error> {
    let indent: Option<Value> = kwargs.get("indent")?;
    // Python's `sort_keys`/`separators` and friends: accepted, not honoured beyond the default.
    for key in ["ensure_ascii", "sort_keys", "separators"] {
        let _: Option<Value> = kwargs.get(key)?;
    }
    let json =
        minijinja::filters::tojson(value, indent, std::iter::empty::<(&str, Value)>().collect())?;
    Ok(Value::from(unescape_html_safe_json(&json.to_string())))
}

fn raise_exception(message: String) -> Result<Value, Error> {
    Err(Error::new(
        ErrorKind::InvalidOperation,
        format!("the template raised an exception: {message}"),
    ))
}

impl ChatTemplate {
    /// Compiles `source`; `bos_token` and `eos_token` are the texts the template sees under
    /// those names. A syntax error is returned as [`ModelError::ChatTemplate`] with its line.
    pub fn new(source: &str, bos_token: &str, eos_token: &str) -> Result<Self, ModelError> {
        let mut env = Environment::new();
        let syntax = minijinja::syntax::SyntaxConfig::builder()
            .trim_blocks(true)
            .lstrip_blocks(true)
            .build()
            .map_err(|e| template_error("syntax settings", &e))?;
        env.set_syntax(syntax);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function("raise_exception", raise_exception);
        env.add_filter("tojson", tojson);
        env.add_template_owned(NAME, rewrite_generation_blocks(source))
            .map_err(|e| template_error("it does not compile", &e))?;
        Ok(Self {
            env: Arc::new(env),
            source: source.to_string(),
            bos_token: bos_token.to_string(),
            eos_token: eos_token.to_string(),
        })
    }

    /// The template's source, as given.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The conversation as the model reads it. With `add_generation_prompt`, the template ends
    /// with the header of a new assistant turn (where generation starts).
    pub fn render(
        &self,
        messages: &[Message],
        add_generation_prompt: bool,
    ) -> Result<String, ModelError> {
        let template = self
            .env
            .get_template(NAME)
            .map_err(|e| template_error("not compiled", &e))?;
        let messages: Vec<Value> = messages
            .iter()
            .map(|m| {
                Value::from_pairs([
                    ("role", Value::from(m.role.as_str())),
                    ("content", Value::from(m.content.as_str())),
                ])
            })
            .collect();
        let ctx = Value::from_pairs([
            ("messages", Value::from(messages)),
            ("add_generation_prompt", Value::from(add_generation_prompt)),
            ("bos_token", Value::from(self.bos_token.as_str())),
            ("eos_token", Value::from(self.eos_token.as_str())),
        ]);
        template
            .render(ctx)
            .map_err(|e| template_error("rendering failed", &e))
    }

    /// The conversation rendered without a generation prompt, and the byte ranges of that text
    /// that hold the assistant turns: each turn's content and the end-of-turn marker the
    /// template writes right after it (SmolLM2's `<|im_end|>`), not its role header.
    ///
    /// The ranges come from rendering prefixes of the conversation: for assistant message `i`,
    /// messages `..i` with the generation prompt end where the turn's content starts, and
    /// messages `..=i` without it end where the turn ends. Both must be prefixes of the whole
    /// rendering; a template that writes earlier turns differently once later ones follow
    /// (dropping earlier reasoning, say) has no such ranges, and is refused with an error
    /// rather than given wrong ones. Whitespace the template writes after the turn (a
    /// newline between turns) is left out: generation stops at the end-of-turn marker, so the
    /// model is never asked to predict what follows it.
    pub fn render_with_spans(
        &self,
        messages: &[Message],
    ) -> Result<(String, Vec<Range<usize>>), ModelError> {
        let full = self.render(messages, false)?;
        let mut spans = Vec::new();
        for (i, message) in messages.iter().enumerate() {
            if message.role != ASSISTANT {
                continue;
            }
            let before = self.render(&messages[..i], true)?;
            let through = self.render(&messages[..=i], false)?;
            for (what, prefix) in [("with the generation prompt", &before), ("", &through)] {
                if !full.starts_with(prefix.as_str()) {
                    let upto = if what.is_empty() { i + 1 } else { i };
                    return Err(ModelError::ChatTemplate(format!(
                        "the template is not prefix-stable: the first {upto} message(s) rendered \
                         {what}{sep}are not the start of the whole conversation's rendering, so \
                         assistant turn {i} cannot be located",
                        sep = if what.is_empty() { "" } else { " " }
                    )));
                }
            }
            let start = before.len();
            let end = through.trim_end().len().max(start);
            spans.push(start..end);
        }
        Ok((full, spans))
    }

    /// For each message, the byte range of `full` (the conversation rendered without a
    /// generation prompt) that holds its content, where the template writes it verbatim, so a
    /// caller can cut a turn's text and keep the template's role headers and end-of-turn
    /// markers around it. A message's turn is where the renderings of the messages before it
    /// and through it differ; its content is the last place the turn holds the text (or the
    /// text trimmed, for templates that `strip()` it). `None` for a message the template
    /// changes or whose prefix renderings are not prefixes of `full`.
    pub fn content_ranges(
        &self,
        messages: &[Message],
        full: &str,
    ) -> Result<Vec<Option<Range<usize>>>, ModelError> {
        let mut ranges = Vec::with_capacity(messages.len());
        // The rendering of no message may raise (a template that reads `messages[0]`): the
        // first turn then starts at the beginning.
        let mut before = if messages.is_empty() {
            String::new()
        } else {
            self.render(&[], false).unwrap_or_default()
        };
        for (i, message) in messages.iter().enumerate() {
            let through = self.render(&messages[..=i], false)?;
            let located = (full.starts_with(before.as_str())
                && full.starts_with(through.as_str())
                && before.len() <= through.len())
            .then(|| {
                let turn = &through[before.len()..];
                let trimmed = message.content.trim();
                let (at, len) = match turn.rfind(message.content.as_str()) {
                    Some(at) if !message.content.is_empty() => (at, message.content.len()),
                    _ if !trimmed.is_empty() => (turn.rfind(trimmed)?, trimmed.len()),
                    _ => return None,
                };
                Some(before.len() + at..before.len() + at + len)
            })
            .flatten();
            ranges.push(located);
            before = through;
        }
        Ok(ranges)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHATML: &str = "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + \
                          message['content'] + '<|im_end|>' + '\n'}}{% endfor %}\
                          {% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

    fn convo() -> Vec<Message> {
        vec![
            Message::new("user", "Hi"),
            Message::new("assistant", "Hello!"),
            Message::new("user", "Bye"),
            Message::new("assistant", "See you."),
        ]
    }

    #[test]
    fn spans_cover_content_and_end_marker_only() {
        let t = ChatTemplate::new(CHATML, "", "<|im_end|>").expect("compiles");
        let (text, spans) = t.render_with_spans(&convo()).expect("renders");
        let parts: Vec<&str> = spans.iter().map(|r| &text[r.clone()]).collect();
        assert_eq!(parts, ["Hello!<|im_end|>", "See you.<|im_end|>"]);
        assert_eq!(text, t.render(&convo(), false).expect("renders"));
    }

    #[test]
    fn content_ranges_hold_each_turns_text() {
        // SmolLM2's way: a default system turn written before the first message when the
        // conversation has none.
        let source = "{% for m in messages %}{% if loop.first and m.role != 'system' %}\
                      <|im_start|>system\nBe kind.<|im_end|>\n{% endif %}<|im_start|>{{ m.role }}\n\
                      {{ m.content }}<|im_end|>\n{% endfor %}";
        let t = ChatTemplate::new(source, "", "").expect("compiles");
        let full = t.render(&convo(), false).expect("renders");
        let ranges = t.content_ranges(&convo(), &full).expect("renders");
        let parts: Vec<&str> = ranges
            .iter()
            .map(|r| &full[r.clone().expect("located")])
            .collect();
        assert_eq!(parts, ["Hi", "Hello!", "Bye", "See you."]);
        // A template that rewrites the text leaves it unlocated.
        let upper = ChatTemplate::new(
            "{% for m in messages %}{{ m.content | upper }};{% endfor %}",
            "",
            "",
        )
        .expect("compiles");
        let full = upper.render(&convo(), false).expect("renders");
        assert!(upper.content_ranges(&convo(), &full).expect("renders")[0].is_none());
    }

    #[test]
    fn generation_prompt_is_added() {
        let t = ChatTemplate::new(CHATML, "", "").expect("compiles");
        let text = t
            .render(&[Message::new("user", "Hi")], true)
            .expect("renders");
        assert_eq!(
            text,
            "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
        );
    }

    #[test]
    fn hf_features_render() {
        // trim_blocks/lstrip_blocks, loop variables, Python methods, tojson, special tokens;
        // the expected text is what transformers' Jinja2 environment renders.
        let source = "{{ bos_token }}\n{% for m in messages %}\n  {% if loop.first %}[{{ loop.length }}]{% endif %}\
                      {{ m.role | upper }}: {{ m.content.strip() }} {{ m.content | trim | tojson }}\n\
                      {% endfor %}{{ eos_token }}";
        let t = ChatTemplate::new(source, "<s>", "</s>").expect("compiles");
        let text = t
            .render(&[Message::new("user", "  a <b> & 'c' \"d\" é  ")], false)
            .expect("renders");
        assert_eq!(
            text,
            "<s>\n[1]USER: a <b> & 'c' \"d\" é \"a <b> & 'c' \\\"d\\\" é\"\n</s>"
        );
    }

    #[test]
    fn generation_blocks_compile() {
        let source = "{% for m in messages %}{{ m.role }}:{%- generation -%} {{ m.content }} \
                      {%- endgeneration %};{% endfor %}";
        let t = ChatTemplate::new(source, "", "").expect("compiles");
        let text = t
            .render(&[Message::new("assistant", "x")], false)
            .expect("renders");
        assert_eq!(text, "assistant:x;");
    }

    #[test]
    fn syntax_errors_are_named() {
        let err = ChatTemplate::new("{% for m in messages %}{{ m.content }}", "", "")
            .expect_err("unclosed for");
        let text = err.to_string();
        assert!(text.contains("does not compile"), "{text}");
        assert!(text.contains("syntax error"), "{text}");
    }

    #[test]
    fn raise_exception_is_an_error() {
        let source = "{% if messages[0].role != 'system' %}{{ raise_exception('System first!') }}{% endif %}ok";
        let t = ChatTemplate::new(source, "", "").expect("compiles");
        let err = t
            .render(&[Message::new("user", "x")], false)
            .expect_err("raises");
        assert!(err.to_string().contains("System first!"), "{err}");
        assert_eq!(
            t.render(&[Message::new("system", "x")], false)
                .expect("renders"),
            "ok"
        );
    }

    #[test]
    fn unstable_prefixes_are_refused() {
        // Only the last assistant turn is written in full: earlier ones change once a later
        // turn follows, so no prefix locates them.
        let source = "{% for m in messages %}{% if m.role == 'assistant' and not loop.last %}[cut]\
                      {% else %}{{ m.role }}:{{ m.content }}\n{% endif %}{% endfor %}";
        let t = ChatTemplate::new(source, "", "").expect("compiles");
        let err = t
            .render_with_spans(&convo())
            .expect_err("not prefix-stable");
        assert!(err.to_string().contains("prefix-stable"), "{err}");
    }

    #[test]
    fn json_unescape_keeps_escaped_backslashes() {
        assert_eq!(
            unescape_html_safe_json(r#""\u003c\\u003c\n""#),
            r#""<\\u003c\n""#
        );
        assert_eq!(unescape_html_safe_json(r#""é\""#), r#""é\""#);
    }

    #[test]
    fn clone_renders_the_same() {
        let t = ChatTemplate::new(CHATML, "", "").expect("compiles");
        let c = t.clone();
        assert_eq!(
            t.render(&convo(), true).expect("renders"),
            c.render(&convo(), true).expect("renders")
        );
    }
}
