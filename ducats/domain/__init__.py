"""Domain rules: plain functions and classes, no Kafka, no database."""
