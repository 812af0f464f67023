//! See [`super`]; built in issue 4.
