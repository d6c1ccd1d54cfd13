"""Operations on the running pipeline: dead-letter triage and redrive."""
