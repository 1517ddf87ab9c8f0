//! The CSV import of tasks: a header row naming the columns, then one task per row. Every
//! row is validated and every error reported with its spreadsheet row and column.

use std::io;

use csv::{ByteRecord, ReaderBuilder, Trim};
use serde::Serialize;

use crate::Email;
use crate::work::{Due, Label, Priority, TASK_DESCRIPTION_MAX, TaskStatus, TaskTitle, description, labels};

/// One valid row of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsvTask {
    /// The row as a spreadsheet numbers it: the header is row 1.
    pub row: usize,
    pub title: TaskTitle,
    pub description: Option<String>,
    pub status: TaskStatus,
    pub priority: Priority,
    pub assignee_email: Option<Email>,
    pub due: Option<Due>,
    pub labels: Vec<Label>,
}

/// One problem in the file. `column` is the column's name, or `*` for the whole row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CsvError {
    pub row: usize,
    pub column: String,
    pub message: String,
}

/// Why a file was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CsvFailure {
    /// More data rows than allowed; the rest of the file was not read.
    #[error("the file has more than {max} rows")]
    TooManyRows { max: usize },
    /// The errors found, in file order (at most [`MAX_ERRORS`] and a last "more" entry).
    #[error("the file has {} errors", .0.len())]
    Invalid(Vec<CsvError>),
}

/// The most errors listed for one file.
pub const MAX_ERRORS: usize = 1_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Column {
    Title,
    Description,
    Status,
    Priority,
    Assignee,
    Due,
    Labels,
}

impl Column {
    const ALL: [Column; 7] = [Column::Title, Column::Description, Column::Status, Column::Priority, Column::Assignee, Column::Due, Column::Labels];

    fn name(self) -> &'static str {
        match self {
            Column::Title => "title",
            Column::Description => "description",
            Column::Status => "status",
            Column::Priority => "priority",
            Column::Assignee => "assignee",
            Column::Due => "due",
            Column::Labels => "labels",
        }
    }

    fn from_header(h: &str) -> Option<Column> {
        match h.to_lowercase().as_str() {
            "assignee email" | "assignee_email" | "assigneeemail" => Some(Column::Assignee),
            h => Column::ALL.into_iter().find(|c| c.name() == h),
        }
    }
}

/// Collects errors up to [`MAX_ERRORS`], then notes that there were more.
#[derive(Default)]
struct Errors {
    list: Vec<CsvError>,
    more_from_row: Option<usize>,
}

impl Errors {
    fn push(&mut self, row: usize, column: &str, message: impl Into<String>) {
        if self.list.len() < MAX_ERRORS {
            self.list.push(CsvError { row, column: column.to_owned(), message: message.into() });
        } else if self.more_from_row.is_none() {
            self.more_from_row = Some(row);
        }
    }

    fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    fn finish(mut self) -> Vec<CsvError> {
        if let Some(row) = self.more_from_row {
            self.list.push(CsvError { row, column: "*".to_owned(), message: format!("more errors were not listed (only the first {MAX_ERRORS} are)") });
        }
        self.list
    }
}

/// Spreadsheet row numbers. The csv crate skips blank lines, and counting its lines would
/// also count line breaks inside quoted cells, so rows are counted here: one per record,
/// plus the blank lines before it.
struct Rows<'a> {
    bytes: &'a [u8],
    row: usize,
}

impl Rows<'_> {
    /// The row of the next record, given the offset where the previous one ended (0 before
    /// the first).
    fn next(&mut self, prev_end: u64) -> usize {
        let mut i = usize::try_from(prev_end).unwrap_or(usize::MAX);
        if i > 0 {
            self.row += 1;
            // The reader may stop between the `\r` and `\n` of the previous record's terminator.
            if self.bytes.get(i - 1) == Some(&b'\r') && self.bytes.get(i) == Some(&b'\n') {
                i += 1;
            }
        }
        while let Some(&b) = self.bytes.get(i) {
            match b {
                b'\n' => self.row += 1,
                b'\r' if self.bytes.get(i + 1) != Some(&b'\n') => self.row += 1,
                b'\r' => {}
                _ => break,
            }
            i += 1;
        }
        self.row
    }
}

/// Parses and validates a CSV file of tasks (UTF-8, optional BOM), reading one record at a
/// time and stopping as soon as there are more than `max_rows` data rows. Blank rows are
/// skipped.
pub fn parse_tasks_csv(bytes: &[u8], max_rows: usize) -> Result<Vec<CsvTask>, CsvFailure> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    parse(bytes, bytes, max_rows)
}

/// `input` yields `bytes`; the split lets a test count what was read.
fn parse(bytes: &[u8], input: impl io::Read, max_rows: usize) -> Result<Vec<CsvTask>, CsvFailure> {
    // The reader trims ASCII spaces; cells are trimmed again after decoding, of Unicode spaces.
    let mut reader = ReaderBuilder::new().has_headers(false).flexible(true).trim(Trim::All).from_reader(input);
    let mut rows = Rows { bytes, row: 1 };
    let mut record = ByteRecord::new();
    let mut errors = Errors::default();

    let (header_row, slots) = match reader.read_byte_record(&mut record) {
        Ok(true) => {
            let row = rows.next(0);
            (row, header(&record, row, &mut errors))
        }
        Ok(false) => return Err(CsvFailure::Invalid(vec![CsvError { row: 1, column: "*".to_owned(), message: "no header row".to_owned() }])),
        Err(e) => return Err(CsvFailure::Invalid(vec![CsvError { row: 1, column: "*".to_owned(), message: format!("is not valid CSV: {e}") }])),
    };
    let mut prev_end = reader.position().byte();
    let mut tasks = Vec::new();
    let mut data_rows = 0usize;
    loop {
        let read = reader.read_byte_record(&mut record);
        let row = rows.next(prev_end);
        prev_end = reader.position().byte();
        match read {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => {
                errors.push(row, "*", format!("is not valid CSV: {e}"));
                break;
            }
        }
        if record.iter().all(|cell| cell.trim_ascii().is_empty()) {
            continue;
        }
        data_rows += 1;
        if data_rows > max_rows {
            return Err(CsvFailure::TooManyRows { max: max_rows });
        }
        if let Some(task) = task(&record, row, &slots, &mut errors)
            && errors.is_empty()
        {
            tasks.push(task);
        }
    }
    if data_rows == 0 {
        errors.push(header_row, "*", "no rows");
    }
    if errors.is_empty() { Ok(tasks) } else { Err(CsvFailure::Invalid(errors.finish())) }
}

/// What a header cell makes of its column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    Column(Column),
    /// No name: its cells must be empty.
    Unnamed,
    /// Unknown or duplicate: reported once, on the header.
    Refused,
}

/// The slot of each header cell, recording the header's errors.
fn header(record: &ByteRecord, row: usize, errors: &mut Errors) -> Vec<Slot> {
    let mut slots = Vec::with_capacity(record.len());
    for cell in record {
        let Ok(name) = std::str::from_utf8(cell).map(str::trim) else {
            errors.push(row, "*", "is not valid UTF-8");
            slots.push(Slot::Refused);
            continue;
        };
        let slot = match Column::from_header(name) {
            _ if name.is_empty() => Slot::Unnamed,
            Some(c) if slots.contains(&Slot::Column(c)) => {
                errors.push(row, name, "duplicate column");
                Slot::Refused
            }
            Some(c) => Slot::Column(c),
            None => {
                errors.push(row, name, "unknown column; the columns are title, description, status, priority, assignee, due and labels");
                Slot::Refused
            }
        };
        slots.push(slot);
    }
    if !slots.contains(&Slot::Column(Column::Title)) {
        errors.push(row, "title", "the title column is required");
    }
    slots
}

/// `Some` value, or `None` once its error is recorded.
fn check<T>(errors: &mut Errors, row: usize, column: Column, r: Result<T, String>) -> Option<T> {
    r.map_err(|message| errors.push(row, column.name(), message)).ok()
}

/// Validates one data row, recording its errors.
fn task(record: &ByteRecord, row: usize, slots: &[Slot], errors: &mut Errors) -> Option<CsvTask> {
    if record.len() > slots.len() {
        errors.push(row, "*", format!("has {} cells but the header has {}", record.len(), slots.len()));
        return None;
    }
    let mut texts = Vec::with_capacity(record.len());
    for (cell, slot) in record.iter().zip(slots) {
        let Ok(text) = std::str::from_utf8(cell).map(str::trim) else {
            errors.push(row, "*", "is not valid UTF-8");
            return None;
        };
        if *slot == Slot::Unnamed && !text.is_empty() {
            errors.push(row, "*", "has a value in a column with no header");
            return None;
        }
        texts.push(text);
    }
    let cell = |c: Column| slots.iter().position(|s| *s == Slot::Column(c)).and_then(|i| texts.get(i)).copied().unwrap_or("");

    // Without a title column the header's error says it all.
    let has_title = slots.contains(&Slot::Column(Column::Title));
    let title = has_title.then(|| check(errors, row, Column::Title, TaskTitle::parse("title", cell(Column::Title)).map_err(|e| e.message))).flatten();
    let desc = opt(cell(Column::Description), |d| description("description", d, TASK_DESCRIPTION_MAX).map_err(|e| e.message));
    let description = check(errors, row, Column::Description, desc);
    let status = check(errors, row, Column::Status, opt(cell(Column::Status), |s| option_value(s).parse::<TaskStatus>().map_err(|e| e.0.to_owned())));
    let priority = check(errors, row, Column::Priority, opt(cell(Column::Priority), |p| option_value(p).parse::<Priority>().map_err(|e| e.0.to_owned())));
    let assignee_email = check(errors, row, Column::Assignee, opt(cell(Column::Assignee), |a| a.parse::<Email>().map_err(|e| e.0.to_owned())));
    let due = check(errors, row, Column::Due, opt(cell(Column::Due), |d| Due::parse("due", d).map_err(|e| e.message)));
    let pieces: Vec<String> = cell(Column::Labels).split([';', ',']).map(str::trim).filter(|l| !l.is_empty()).map(String::from).collect();
    let labels = labels("labels", &pieces)
        .map_err(|errs| {
            for e in errs {
                // `labels[i]` names one label, `labels` the whole cell.
                let index = e.field.strip_prefix("labels[").and_then(|i| i.strip_suffix(']')).and_then(|i| i.parse::<usize>().ok());
                let message = match index.and_then(|i| pieces.get(i)) {
                    Some(label) => format!("label \"{label}\" {}", e.message),
                    None => e.message,
                };
                errors.push(row, Column::Labels.name(), message);
            }
        })
        .ok();

    let (Some(title), Some(description), Some(status), Some(priority), Some(assignee_email), Some(due), Some(labels)) =
        (title, description, status, priority, assignee_email, due, labels)
    else {
        return None;
    };
    Some(CsvTask { row, title, description, status: status.unwrap_or(TaskStatus::Todo), priority: priority.unwrap_or_default(), assignee_email, due, labels })
}

/// `None` for an empty cell, else `f` of it.
fn opt<T, E>(cell: &str, f: impl FnOnce(&str) -> Result<T, E>) -> Result<Option<T>, E> {
    if cell.is_empty() { Ok(None) } else { f(cell).map(Some) }
}

/// A status or priority as people type it (`In progress`) in the API's form (`in_progress`).
fn option_value(cell: &str) -> String {
    cell.to_lowercase().replace(' ', "_")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invalid(csv: &str) -> Vec<CsvError> {
        match parse_tasks_csv(csv.as_bytes(), 100) {
            Err(CsvFailure::Invalid(errors)) => errors,
            other => panic!("expected errors, got {other:?}"),
        }
    }

    fn at(errors: &[CsvError]) -> Vec<(usize, &str)> {
        errors.iter().map(|e| (e.row, e.column.as_str())).collect()
    }

    #[test]
    fn a_file_with_every_column() {
        let csv = "Title,Description,Status,Priority,Assignee,Due,Labels\n\
                   Write spec,\"Some **markdown**\nover two lines\",In progress,HIGH,Ann@Example.com,2026-12-01,\"Docs; Q4, docs\"\n\
                   Ship it,,,,,,\n";
        let tasks = parse_tasks_csv(csv.as_bytes(), 10).unwrap();
        assert_eq!(tasks.len(), 2);
        let t = &tasks[0];
        assert_eq!(t.row, 2);
        assert_eq!(t.title.as_str(), "Write spec");
        assert_eq!(t.description.as_deref(), Some("Some **markdown**\nover two lines"));
        assert_eq!(t.status, TaskStatus::InProgress);
        assert_eq!(t.priority, Priority::High);
        assert_eq!(t.assignee_email.as_ref().unwrap().as_str(), "Ann@example.com");
        assert_eq!(t.due.as_ref().unwrap().key(), "2026-12-01T23:59:59Z");
        assert_eq!(t.labels.iter().map(Label::as_str).collect::<Vec<_>>(), ["docs", "q4"]);
        let t = &tasks[1];
        // The quoted line break keeps "Ship it" on spreadsheet row 3.
        assert_eq!(t.row, 3);
        assert_eq!((t.status, t.priority, &t.description, &t.assignee_email, &t.due), (TaskStatus::Todo, Priority::None, &None, &None, &None));
        assert!(t.labels.is_empty());
    }

    #[test]
    fn columns_in_any_order_and_case_with_a_bom() {
        let csv = "\u{feff} LABELS , assignee_email,DUE,title\r\nbug,bob@example.com,2026-01-02T10:00:00+01:00, Fix  \r\n";
        let tasks = parse_tasks_csv(csv.as_bytes(), 10).unwrap();
        assert_eq!(tasks[0].title.as_str(), "Fix");
        assert_eq!(tasks[0].due.as_ref().unwrap().as_str(), "2026-01-02T09:00:00Z");
        assert_eq!(tasks[0].assignee_email.as_ref().unwrap().as_str(), "bob@example.com");
        for name in ["Assignee Email", "assigneeemail", "assignee"] {
            let tasks = parse_tasks_csv(format!("title,{name}\nA,a@b.co\n").as_bytes(), 10).unwrap();
            assert!(tasks[0].assignee_email.is_some(), "{name}");
        }
        // Fewer cells than the header: the missing ones are empty.
        assert_eq!(parse_tasks_csv(b"title,status\nOnly a title\n", 10).unwrap()[0].status, TaskStatus::Todo);
    }

    #[test]
    fn header_errors_name_the_column() {
        assert_eq!(at(&invalid("title,Owner,STATUS,status\nA,,,\n")), [(1, "Owner"), (1, "status")]);
        assert_eq!(at(&invalid("name,status\nA,todo\n")), [(1, "name"), (1, "title")]);
        // A column without a name is ignored, but not its values.
        assert_eq!(parse_tasks_csv(b"title,,\nA,,\n", 10).map(|t| t.len()), Ok(1));
        assert_eq!(at(&invalid("title,,\nA,,note\n")), [(2, "*")]);
        // Without a title column the rows are not also blamed for lacking one.
        assert_eq!(at(&invalid("status\ntodo\n")), [(1, "title")]);
        assert_eq!(at(&invalid("title,assignee email,assignee\nA,,\n")), [(1, "assignee")]);
    }

    #[test]
    fn each_bad_cell_is_reported_at_its_row_and_column() {
        let csv = "title,description,status,priority,assignee,due,labels\n\
                   ,,,,,,\n\
                   ,ok,,,,,\n\
                   A,\"bell\u{7}\",,,,,\n\
                   B,,started,,,,\n\
                   C,,,critical,,,\n\
                   D,,,,not-an-email,,\n\
                   E,,,,,31/12/2026,\n\
                   F,,,,,,\"ok;a#b\"\n\
                   G,,,,,,\"1,2,3,4,5,6,7,8,9,10,11\"\n";
        let errors = invalid(csv);
        // Row 2 is blank and skipped; row 3 has no title.
        assert_eq!(at(&errors), [(3, "title"), (4, "description"), (5, "status"), (6, "priority"), (7, "assignee"), (8, "due"), (9, "labels"), (10, "labels")]);
        assert_eq!(errors[2].message, "must be one of todo, in_progress, blocked, done, canceled");
        assert_eq!(errors[6].message, "label \"a#b\" must not contain ',', ';' or '#'");
        assert_eq!(errors[7].message, "at most 10 labels");
        assert_eq!(serde_json::to_value(&errors[0]).unwrap(), serde_json::json!({"row": 3, "column": "title", "message": "must not be empty"}));
    }

    #[test]
    fn every_error_in_a_row_and_in_the_file_is_collected() {
        let errors = invalid("title,status,priority,due\n,x,y,z\nok,,,\n,done,,\n");
        assert_eq!(at(&errors), [(2, "title"), (2, "status"), (2, "priority"), (2, "due"), (4, "title")]);
    }

    #[test]
    fn status_and_priority_accept_what_people_type() {
        let tasks = parse_tasks_csv(b"title,status,priority\nA,in_progress,Urgent\nB,IN PROGRESS,low\nC,Done,none\n", 10).unwrap();
        assert_eq!(
            tasks.iter().map(|t| (t.status, t.priority)).collect::<Vec<_>>(),
            [(TaskStatus::InProgress, Priority::Urgent), (TaskStatus::InProgress, Priority::Low), (TaskStatus::Done, Priority::None)]
        );
    }

    #[test]
    fn rows_count_blank_lines_and_quoted_line_breaks() {
        for csv in [
            "title,status\n\nA,x\n\"B\nb\",y\n\n\nC,z",
            "title,status\r\n\r\nA,x\r\n\"B\r\nb\",y\r\n\r\n\r\nC,z\r\n",
            "title,status\r\rA,x\r\"B\rb\",y\r\r\rC,z\r",
        ] {
            assert_eq!(at(&invalid(csv)), [(3, "status"), (4, "title"), (4, "status"), (7, "status")], "{csv:?}");
        }
        assert_eq!(at(&invalid("\n\ntitle\n\n")), [(3, "*")]);
    }

    #[test]
    fn broken_rows_are_errors_for_the_whole_row() {
        let mut csv = b"title,status\nA,todo,extra\nB,todo,\n".to_vec();
        csv.extend_from_slice(b"C\xff,todo\nD,\"\xfe\"\n,,surplus\nE\n");
        let errors = match parse_tasks_csv(&csv, 10) {
            Err(CsvFailure::Invalid(e)) => e,
            other => panic!("{other:?}"),
        };
        assert_eq!(at(&errors), [(2, "*"), (3, "*"), (4, "*"), (5, "*"), (6, "*")]);
        assert_eq!(errors[0].message, "has 3 cells but the header has 2");
        assert_eq!(errors[2].message, "is not valid UTF-8");
    }

    #[test]
    fn empty_files_and_files_without_rows() {
        assert_eq!(invalid(""), [CsvError { row: 1, column: "*".into(), message: "no header row".into() }]);
        assert_eq!(invalid("title,due\n"), [CsvError { row: 1, column: "*".into(), message: "no rows".into() }]);
        assert_eq!(invalid("\u{feff}title\n\n,\n"), [CsvError { row: 1, column: "*".into(), message: "no rows".into() }]);
    }

    #[test]
    fn errors_stop_at_a_thousand() {
        let csv: String = std::iter::once("title,status\n".to_owned()).chain((0..1_500).map(|_| "A,bad\n".to_owned())).collect();
        let errors = match parse_tasks_csv(csv.as_bytes(), 2_000) {
            Err(CsvFailure::Invalid(e)) => e,
            other => panic!("{other:?}"),
        };
        assert_eq!(errors.len(), MAX_ERRORS + 1);
        assert_eq!((errors[999].row, errors[999].column.as_str()), (1_001, "status"));
        assert_eq!((errors[1_000].row, errors[1_000].column.as_str()), (1_002, "*"));
    }

    /// Counts the bytes the parser pulls.
    struct Counting<'a>(&'a [u8], usize);
    impl io::Read for Counting<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.0.read(buf)?;
            self.1 += n;
            Ok(n)
        }
    }

    #[test]
    fn too_many_rows_stops_reading() {
        let csv: String = std::iter::once("title\n".to_owned()).chain((0..100_000).map(|i| format!("Task {i:06}\n"))).collect();
        let mut input = Counting(csv.as_bytes(), 0);
        assert_eq!(parse(csv.as_bytes(), &mut input, 1_000), Err(CsvFailure::TooManyRows { max: 1_000 }));
        // 1,001 rows of 12 bytes plus at most one 8 KiB buffer ahead, out of 1.2 MB.
        assert!(input.1 <= 6 + 1_001 * 12 + 8 * 1024, "{}", input.1);
        assert_eq!(parse_tasks_csv(csv.as_bytes(), 100_000).map(|t| t.len()), Ok(100_000));
        // Exactly at the limit is fine; blank rows do not count.
        assert_eq!(parse_tasks_csv(b"title\nA\n\n,\nB\n", 2).map(|t| t.len()), Ok(2));
        assert_eq!(parse_tasks_csv(b"title\nA\nB\nC\n", 2), Err(CsvFailure::TooManyRows { max: 2 }));
    }
}
