"""Grades and feedback back into the learning platform the class came from.

Discovery keeps who each student is in Canvas or Moodle (`SubmissionResult.lms`, read
from the download's names); the exports here read `results.json` alone and write what
each platform's own import reads: Canvas's Gradebook CSV and "Re-Upload Submissions"
zip, Moodle's offline grading worksheet and "Upload multiple feedback files in a zip".
Feedback is always the student-facing page (`grader.lms.pages`), never the instructor's.
Nothing is invented: a student without the platform's ids is named and left out.
"""
