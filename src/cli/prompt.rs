//! Yes/no questions before dangerous steps (Ganeti's `AskUser`).
//!
//! The question goes to the terminal (`/dev/tty`), not stdout, so scripts
//! reading a command's output never see it. Without a terminal the answer
//! is the default, "no", as in Ganeti: scripts must pass the option that
//! confirms (`--yes`, `--force`, `--yes-do-it`).

use std::io::{BufRead, Write};

/// Asks `question` on the terminal; `false` when there is none.
pub fn ask_user(question: &str) -> bool {
    let Ok(tty) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
    else {
        eprintln!("{question}\nNo terminal to answer on: not confirmed (--force or --yes skips this question).");
        return false;
    };
    let Ok(out) = tty.try_clone() else {
        return false;
    };
    let mut input = std::io::BufReader::new(tty);
    let mut out = out;
    ask(question, &mut input, &mut out)
}

/// Asks `question` on `output` and reads answers from `input` until one is
/// `y` or `n` (`?` explains the choices); end of input or an error is "no".
pub fn ask(question: &str, input: &mut dyn BufRead, output: &mut dyn Write) -> bool {
    loop {
        // A failed prompt write leaves nothing to answer: treat as "no".
        if write!(output, "{question}\ny/[n]/?: ")
            .and_then(|()| output.flush())
            .is_err()
        {
            return false;
        }
        let mut line = String::new();
        match input.read_line(&mut line) {
            Ok(0) | Err(_) => return false,
            Ok(_) => {}
        }
        match line.trim() {
            "y" => return true,
            "n" | "" => return false,
            "?" => {
                let _ = writeln!(
                    output,
                    " y - Perform the operation\n n - Do not perform the operation"
                );
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(answers: &str) -> (bool, String) {
        let mut input = std::io::Cursor::new(answers.as_bytes().to_vec());
        let mut out = Vec::new();
        let r = ask("Continue?", &mut input, &mut out);
        (r, String::from_utf8(out).unwrap())
    }

    #[test]
    fn answers() {
        assert!(run("y\n").0);
        assert!(!run("n\n").0);
        assert!(!run("\n").0);
        assert!(!run("").0);
        let (r, out) = run("?\nmaybe\ny\n");
        assert!(r);
        assert_eq!(out.matches("Continue?\ny/[n]/?: ").count(), 3);
        assert!(out.contains(" y - Perform the operation"));
    }
}
