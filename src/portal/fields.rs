//! The "raise a request" form, built from a request type's fields: which input each Jira field type
//! becomes, what a submission means, and the inline validation before anything reaches Jira.

use chrono::NaiveDate;
use serde_json::{Map, Value, json};

use super::jsm::{JiraSchema, RequestTypeField};

/// Longest single-line text Jira accepts (summary, text fields).
const MAX_LINE: usize = 255;
/// Longest multi-line text Jira accepts.
const MAX_TEXT: usize = 32_767;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Widget {
    Text,
    Paragraph,
    Select,
    MultiSelect,
    Radio,
    Checkboxes,
    Date,
    Number,
    /// A field this helpdesk cannot collect (attachments, user pickers, cascading selects…); the
    /// string says what it is.
    Unsupported(String),
}

#[derive(Debug, Clone)]
pub struct FieldOption {
    pub value: String,
    pub label: String,
}

/// One field of the form, with its current values and error.
#[derive(Debug, Clone)]
pub struct FormField {
    pub field_id: String,
    /// The form input's name.
    pub input: String,
    pub label: String,
    pub description: String,
    pub required: bool,
    pub widget: Widget,
    pub options: Vec<FieldOption>,
    pub values: Vec<String>,
    pub error: Option<String>,
}

impl FormField {
    /// The template's switch.
    pub fn kind(&self) -> &'static str {
        match self.widget {
            Widget::Text => "text",
            Widget::Paragraph => "paragraph",
            Widget::Select => "select",
            Widget::MultiSelect => "multiselect",
            Widget::Radio => "radio",
            Widget::Checkboxes => "checkboxes",
            Widget::Date => "date",
            Widget::Number => "number",
            Widget::Unsupported(_) => "unsupported",
        }
    }

    pub fn value(&self) -> &str {
        self.values.first().map(String::as_str).unwrap_or("")
    }

    pub fn has(&self, v: &str) -> bool {
        self.values.iter().any(|x| x == v)
    }

    /// An id for `<label for>` / `aria-describedby`.
    pub fn dom_id(&self) -> String {
        format!("f-{}", self.field_id.replace(|c: char| !c.is_ascii_alphanumeric() && c != '_', "-"))
    }
}

fn widget(schema: &JiraSchema, field_id: &str, has_options: bool) -> Widget {
    let custom = schema.custom.as_deref().unwrap_or("");
    let system = schema.system.as_deref().unwrap_or(field_id);
    let unsupported = || {
        Widget::Unsupported(match &schema.items {
            Some(items) => format!("{} of {items}", schema.kind),
            None => schema.kind.clone(),
        })
    };
    match schema.kind.as_str() {
        "string" if system == "description" || system == "environment" || custom.ends_with(":textarea") => {
            Widget::Paragraph
        }
        "string" => Widget::Text,
        "number" => Widget::Number,
        "date" => Widget::Date,
        "option" | "priority" if !has_options => unsupported(),
        "option" if custom.ends_with(":radiobuttons") => Widget::Radio,
        "option" | "priority" => Widget::Select,
        "array" if !has_options => unsupported(),
        "array" if schema.items.as_deref() == Some("option") && custom.ends_with(":multicheckboxes") => {
            Widget::Checkboxes
        }
        "array" if matches!(schema.items.as_deref(), Some("option" | "component")) => Widget::MultiSelect,
        _ => unsupported(),
    }
}

/// The form for a request type: visible fields, with their default values.
pub fn form_fields(fields: &[RequestTypeField]) -> Vec<FormField> {
    fields
        .iter()
        .filter(|f| f.visible != Some(false))
        .map(|f| {
            let w = widget(&f.jira_schema, &f.field_id, !f.valid_values.is_empty());
            FormField {
                input: format!("field.{}", f.field_id),
                field_id: f.field_id.clone(),
                label: if f.name.is_empty() { f.field_id.clone() } else { f.name.clone() },
                description: f.description.clone(),
                required: f.required,
                options: f
                    .valid_values
                    .iter()
                    .map(|v| FieldOption {
                        value: v.value.clone(),
                        label: if v.label.is_empty() { v.value.clone() } else { v.label.clone() },
                    })
                    .collect(),
                values: f.default_values.iter().map(|v| v.value.clone()).filter(|v| !v.is_empty()).collect(),
                widget: w,
                error: None,
            }
        })
        .collect()
}

/// Fields the customer must fill but this helpdesk cannot show: the request type cannot be raised here.
pub fn blocking_fields(fields: &[FormField]) -> Vec<String> {
    fields
        .iter()
        .filter(|f| f.required && matches!(f.widget, Widget::Unsupported(_)))
        .map(|f| f.label.clone())
        .collect()
}

/// Puts a submission's values into the fields (every value of repeated inputs).
pub fn apply(fields: &mut [FormField], form: &[(String, String)]) {
    for f in fields.iter_mut() {
        if matches!(f.widget, Widget::Unsupported(_)) {
            continue;
        }
        f.values = form.iter().filter(|(k, _)| *k == f.input).map(|(_, v)| v.clone()).collect();
        if matches!(
            f.widget,
            Widget::Text | Widget::Paragraph | Widget::Date | Widget::Number | Widget::Select | Widget::Radio
        ) {
            f.values.truncate(1);
        }
        for v in &mut f.values {
            // Browsers send textarea line breaks as CRLF; Jira's text is LF.
            *v = if matches!(f.widget, Widget::Paragraph) { v.replace("\r\n", "\n") } else { v.trim().to_string() };
        }
        f.values.retain(|v| !v.trim().is_empty());
        f.error = None;
    }
}

/// Checks every field and builds `requestFieldValues`; on any error, the fields carry their messages.
pub fn validate(fields: &mut [FormField]) -> Result<Map<String, Value>, usize> {
    let mut out = Map::new();
    let mut errors = 0;
    for f in fields.iter_mut() {
        if let Widget::Unsupported(_) = f.widget {
            if f.required {
                f.error = Some("This helpdesk cannot collect this field.".into());
                errors += 1;
            }
            continue;
        }
        if f.values.is_empty() {
            if f.required {
                f.error = Some("This field is required.".into());
                errors += 1;
            }
            continue;
        }
        let value = match f.widget {
            Widget::Text => {
                let v = f.value();
                if v.chars().count() > MAX_LINE {
                    Err(format!("Use at most {MAX_LINE} characters."))
                } else {
                    Ok(json!(v))
                }
            }
            Widget::Paragraph => {
                let v = f.value();
                if v.chars().count() > MAX_TEXT {
                    Err(format!("Use at most {MAX_TEXT} characters."))
                } else {
                    Ok(json!(v))
                }
            }
            Widget::Number => match f.value().parse::<f64>() {
                Ok(n) if n.is_finite() => {
                    Ok(if n.fract() == 0.0 && n.abs() < 9e15 { json!(n as i64) } else { json!(n) })
                }
                _ => Err("Enter a number.".to_string()),
            },
            Widget::Date => match NaiveDate::parse_from_str(f.value(), "%Y-%m-%d") {
                Ok(d) => Ok(json!(d.format("%Y-%m-%d").to_string())),
                Err(_) => Err("Enter a date as YYYY-MM-DD.".to_string()),
            },
            Widget::Select | Widget::Radio => {
                if f.options.iter().any(|o| o.value == f.value()) {
                    Ok(json!({ "id": f.value() }))
                } else {
                    Err("Choose one of the options.".to_string())
                }
            }
            Widget::MultiSelect | Widget::Checkboxes => {
                if f.values.iter().all(|v| f.options.iter().any(|o| &o.value == v)) {
                    let mut seen = Vec::new();
                    for v in &f.values {
                        if !seen.contains(v) {
                            seen.push(v.clone());
                        }
                    }
                    Ok(Value::Array(seen.into_iter().map(|v| json!({ "id": v })).collect()))
                } else {
                    Err("Choose among the options.".to_string())
                }
            }
            Widget::Unsupported(_) => unreachable!("handled above"),
        };
        match value {
            Ok(v) => {
                out.insert(f.field_id.clone(), v);
            }
            Err(message) => {
                f.error = Some(message);
                errors += 1;
            }
        }
    }
    if errors == 0 { Ok(out) } else { Err(errors) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(v: Value) -> RequestTypeField {
        serde_json::from_value(v).unwrap()
    }

    fn sample() -> Vec<FormField> {
        form_fields(&[
            field(
                json!({"fieldId":"summary","name":"Summary","required":true,"validValues":[],"jiraSchema":{"type":"string","system":"summary"}}),
            ),
            field(
                json!({"fieldId":"description","name":"Description","required":false,"jiraSchema":{"type":"string","system":"description"}}),
            ),
            field(json!({"fieldId":"customfield_1","name":"Office","required":true,
                "validValues":[{"value":"10","label":"Paris","children":[]},{"value":"11","label":"Oslo","children":[]}],
                "jiraSchema":{"type":"option","custom":"com.atlassian.jira.plugin.system.customfieldtypes:select","customId":1}})),
            field(json!({"fieldId":"customfield_2","name":"Systems","required":false,
                "validValues":[{"value":"20","label":"Mail"},{"value":"21","label":"VPN"}],
                "jiraSchema":{"type":"array","items":"option","custom":"com.atlassian.jira.plugin.system.customfieldtypes:multicheckboxes"}})),
            field(
                json!({"fieldId":"duedate","name":"Due","required":false,"jiraSchema":{"type":"date","system":"duedate"}}),
            ),
            field(
                json!({"fieldId":"customfield_3","name":"Seats","required":false,"jiraSchema":{"type":"number","custom":"x:float"}}),
            ),
            field(
                json!({"fieldId":"attachment","name":"Attachment","required":false,"jiraSchema":{"type":"array","items":"attachment","system":"attachment"}}),
            ),
            field(json!({"fieldId":"customfield_4","name":"Urgency","required":false,
                "validValues":[{"value":"30","label":"High"}],
                "jiraSchema":{"type":"option","custom":"com.atlassian.jira.plugin.system.customfieldtypes:radiobuttons"}})),
        ])
    }

    fn form(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn field_types_become_widgets() {
        let kinds: Vec<&str> = sample().iter().map(FormField::kind).collect();
        assert_eq!(kinds, ["text", "paragraph", "select", "checkboxes", "date", "number", "unsupported", "radio"]);
        assert!(blocking_fields(&sample()).is_empty());
    }

    #[test]
    fn a_valid_submission_becomes_request_field_values() {
        let mut fields = sample();
        apply(
            &mut fields,
            &form(&[
                ("field.summary", "  Printer jammed "),
                ("field.description", "Line 1\nLine 2"),
                ("field.customfield_1", "11"),
                ("field.customfield_2", "20"),
                ("field.customfield_2", "21"),
                ("field.duedate", "2030-01-31"),
                ("field.customfield_3", "3"),
                ("field.customfield_4", "30"),
            ]),
        );
        let values = validate(&mut fields).unwrap();
        assert_eq!(values["summary"], "Printer jammed");
        assert_eq!(values["description"], "Line 1\nLine 2");
        assert_eq!(values["customfield_1"], json!({"id": "11"}));
        assert_eq!(values["customfield_2"], json!([{"id": "20"}, {"id": "21"}]));
        assert_eq!(values["duedate"], "2030-01-31");
        assert_eq!(values["customfield_3"], 3);
        assert_eq!(values["customfield_4"], json!({"id": "30"}));
        assert!(!values.contains_key("attachment"));
    }

    #[test]
    fn errors_are_inline_and_keep_values() {
        let mut fields = sample();
        apply(
            &mut fields,
            &form(&[
                ("field.summary", "   "),
                ("field.customfield_1", "99"),
                ("field.duedate", "31/01/2030"),
                ("field.customfield_3", "three"),
                ("field.customfield_2", "nope"),
            ]),
        );
        assert_eq!(validate(&mut fields).unwrap_err(), 5);
        assert_eq!(fields[0].error.as_deref(), Some("This field is required."));
        assert_eq!(fields[2].error.as_deref(), Some("Choose one of the options."));
        assert_eq!(fields[4].value(), "31/01/2030");
        assert!(fields[4].error.as_deref().unwrap().contains("YYYY-MM-DD"));
        assert_eq!(fields[5].error.as_deref(), Some("Enter a number."));
        assert!(fields[1].error.is_none());
    }

    #[test]
    fn a_required_field_we_cannot_show_blocks_the_form() {
        let mut fields = form_fields(&[field(json!({"fieldId":"customfield_9","name":"Approver","required":true,
            "jiraSchema":{"type":"user","custom":"x:userpicker"}}))]);
        assert_eq!(blocking_fields(&fields), vec!["Approver".to_string()]);
        assert!(validate(&mut fields).is_err());
    }

    #[test]
    fn long_summaries_are_refused() {
        let mut fields = sample();
        let long = "x".repeat(256);
        apply(&mut fields, &form(&[("field.summary", &long), ("field.customfield_1", "10")]));
        assert_eq!(validate(&mut fields).unwrap_err(), 1);
        assert!(fields[0].error.as_deref().unwrap().contains("255"));
    }
}
