"""The Zwicky Transient Facility."""

from boom_tasks.surveys.base import Survey

#: ZTF's public stream names each night's topic after its UTC date and program.
ZTF = Survey(name="ZTF", topic_template="ztf_{date}_programid1")
