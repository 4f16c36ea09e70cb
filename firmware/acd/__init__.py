"""Queues, agents, skills, overflow, schedules, callback, IVR and voicemail."""
