DROP TABLE message;
